"""djangohost: every Django app of a host, from packages to Nginx, in the order it is built.

    pyinfra INVENTORY deploys/site.py                      # every app
    pyinfra INVENTORY deploys/site.py --data app=hello     # only hello (and what it needs)
"""

from pyinfra import host, inventory
from pyinfra.api.operation import OperationMeta

from deploys import (
    backups,
    balancer,
    base,
    broker,
    dbserver,
    firewall,
    health,
    limits,
    lock,
    logs,
    nginx,
    ops,
    paths,
    removal,
    roll,
    schedule,
    supervisor,
    tls,
)
from deploys.app import AppChanges, checked, django_app, live, passed
from deploys.inventory import check_host, host_settings, selected
from deploys.ops import Guard
from deploys.state import read_state
from deploys.supervisor import Reactions
from deploys.topology import private_address, topology_of

# Every host's apps and roles are checked before any operation is prepared on any host.
topology = topology_of(inventory)
all_apps = topology.apps[host.name]
# What this host keeps as the database server of app servers without the db role, and balances
# as their load balancer.
served = topology.served.get(host.name, [])
balanced = topology.balanced.get(host.name, [])
apps = [app for app in selected(all_apps, host.data) if app.present]
removed = [app for app in selected(all_apps, host.data) if not app.present]
# What this host copies from database servers is read beside its own state.
dbserver.read_files(topology, {app.database_server.host for app in apps if app.database_server})
settings = host_settings(host.name, host.data)
state = read_state(all_apps, settings)
check_host(host.name, all_apps, state)

# One run at a time; a targeted run leaves hosts without its apps alone.
with lock.held(apps or removed or served or balanced, taken=lock.LOCK in state.paths):
    # The load balancer, then the database server: before the apps of any host, whose servers copy
    # what it makes (passwords) as the run goes, after the rendezvous.
    if balanced:
        balancer.balancer(apps=balanced)
    if served:
        dbserver.server(databases=served, address=private_address(host))
    # What the host's roles open to some hosts only: PostgreSQL's port to the apps' servers.
    firewall.firewall(ports=firewall.ports(topology, host.name), state=state)
    if topology.served:
        ops.rendezvous(name="Database server ready")
    if apps or removed:
        base.host_base(apps=apps, settings=settings, state=state)

    # Each app's deploy stops at its first failed step (see Guard) and leaves the others going.
    # pyinfra types every @deploy as returning one OperationMeta; these return what is annotated.
    guards = {app.name: Guard(app.name) for app in apps}
    prepared: dict[str, AppChanges] = {}
    # Built while the servers' packages install (see deploys.base).
    for app in host.loop(apps):
        prepared[app.name] = django_app(app=app, settings=settings, state=state, guard=guards[app.name],  # type: ignore[assignment]
                                        _if=guards[app.name].ok)

    if apps or removed:
        base.check_services(apps=apps, settings=settings, state=state)
        # The schedule keeps every app the host has; the settings are those of the apps deployed now.
        backups.backups(apps=apps, state=state,
                        scheduled=[app for app in all_apps if app.present and (app in apps or app.name in state.users)])
        logs.rotation(settings=settings, state=state)
    # The apps' checks run side by side, while the other servers' packages install.
    for app in host.loop(apps):
        guard = guards[app.name]
        # What the release is checked against: its database and broker.
        if app.database and not app.database_server:  # PostgreSQL's or MariaDB's, on this host
            base.ENGINES[app.database].database(app=app, state=state, guard=guard, _if=guard.ok)
        if app.broker:
            broker.broker(app=app, settings=settings, state=state, guard=guard, _if=guard.ok)
        checked(app=app, state=state, changes=prepared[app.name], guard=guard, _if=guard.ok)
    if apps or removed:
        base.host_services(apps=apps, settings=settings, state=state)
    for app in host.loop(apps):
        passed(app=app, changes=prepared[app.name], guard=guards[app.name], _if=guards[app.name].ok)
    for app in host.loop(removed):
        removal.remove(app=app, state=state)

    # Going live: behind the load balancer, one app server after the other (see deploys.roll).
    for mine in roll.turns(topology, guards, prepared):
        if not mine:
            continue
        reactions: dict[str, Reactions] = {}
        for app in host.loop(apps):
            guard = guards[app.name]
            live(app=app, state=state, changes=prepared[app.name], guard=guard, _if=guard.ok)
            if app.limits or paths.slice_unit(app) in state.paths:
                limits.limits(app=app, state=state, _if=guard.ok)
            reactions[app.name] = supervisor.program(app=app, settings=settings, state=state,  # type: ignore[assignment]
                                                     changes=prepared[app.name], guard=guard, _if=guard.ok)
            schedule.schedule(app=app, state=state, _if=guard.ok)

        certificates: dict[str, list[OperationMeta]] = {}
        # Behind the load balancer, TLS ends there (deploys.balancer).
        for app in host.loop([app for app in apps if app.tls and not app.balancer]):
            certificates[app.name] = tls.certificate(app=app, state=state,  # type: ignore[assignment]
                                                     guard=guards[app.name], _if=guards[app.name].ok)
        acme_apps = [app for app in apps if app.tls and app.tls.mode == "acme" and not app.balancer]
        if acme_apps:
            tls.acme_client(state=state)

        if apps or removed:
            nginx_reload = nginx.sites(apps=apps, removed=removed, all_apps=all_apps, state=state,
                                       certificates=certificates, guards=guards)
        for app in host.loop(acme_apps):
            tls.acme(app=app, state=state, guard=guards[app.name])
        for app in host.loop(apps):
            health.gate(app=app, state=state, reactions=reactions[app.name], nginx_reload=nginx_reload,
                        guard=guards[app.name], keep=settings.keep_releases, attempt=prepared[app.name].attempt)

    health.failures(guards=list(guards.values()))
