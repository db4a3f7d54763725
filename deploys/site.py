"""djangohost: every Django app of a host, from packages to Nginx, in the order it is built.

    pyinfra INVENTORY deploys/site.py                      # every app
    pyinfra INVENTORY deploys/site.py --data app=hello     # only hello (and what it needs)

Each app's deploy stops at its first failed step and leaves the others going (engine.ops.Guard,
engine.steps.each); behind a load balancer, app servers go live one after the other
(components.balancer.roll).
"""

from pyinfra import host, inventory

from deploys.components import (
    backups,
    balancer,
    base,
    broker,
    databases,
    dbserver,
    firewall,
    health,
    history,
    limits,
    logs,
    nginx,
    notify,
    offsite,
    registry,
    removal,
    schedule,
    supervisor,
    tls,
)
from deploys.components.app import checked, django_app, live, passed
from deploys.components.balancer import roll
from deploys.engine import lock, ops, steps
from deploys.engine.steps import each, guards_of
from deploys.model.inventory import host_settings, selected
from deploys.model.topology import private_address, topology_of

# Every host's apps and roles are checked before any operation is prepared on any host.
topology = topology_of(inventory, registry.CONTRACT)
all_apps = topology.apps[host.name]
apps = [app for app in selected(all_apps, host.data) if app.present]
removed = [app for app in selected(all_apps, host.data) if not app.present]
# What this host keeps as the database server of app servers, and balances as their load balancer.
served = topology.served.get(host.name, [])
balanced = topology.balanced.get(host.name, [])
# What this host copies from database servers is read beside its own state.
dbserver.read_files(topology, {app.database_server.host for app in apps if app.database_server})
settings = host_settings(host.name, host.data)
state = registry.read_state(all_apps, settings)
registry.check_host(host.name, all_apps, state)
needs = registry.needs(apps, settings)
guards = guards_of(apps)


def roles() -> None:
    """The load balancer, then the database server: before the apps of any host, whose servers copy
    what it makes (passwords) as the run goes, after the rendezvous."""
    if balanced:
        balancer.balancer(apps=balanced)
    if served:
        dbserver.server(databases=served, address=private_address(host))
    firewall.firewall(ports=firewall.ports(topology, host.name), state=state)
    if topology.served:
        ops.rendezvous(name="Database server ready")


def app_host() -> None:
    """This host's apps, built and checked side by side while its packages install, then live."""
    base.host_base(apps=apps, settings=settings, state=state, needs=needs)
    changes = each(apps, guards, django_app, settings=settings, state=state)
    base.check_services(state=state, needs=needs)
    broker.host(apps=apps, state=state)
    scheduled = [app for app in all_apps if app.present and (app in apps or app.name in state.users)]
    backups.backups(apps=apps, state=state, scheduled=scheduled)
    offsite.offsite(apps=apps, state=state, scheduled=scheduled)
    logs.rotation(settings=settings, state=state)
    notify.alerts(apps=all_apps, settings=settings, state=state)
    each(apps, guards, databases.database, state=state)
    each(apps, guards, broker.broker, settings=settings, state=state)
    each(apps, guards, checked, state=state, changes=changes)
    base.host_services(state=state, needs=needs)
    each(apps, guards, passed, changes=changes)
    for app in host.loop(removed):
        removal.remove(app=app, state=state)
    for mine in roll.turns(topology, guards, changes):
        if mine:
            go_live(changes)
    history.record(apps=apps, guards=guards, changes=changes, state=state)


def go_live(changes: dict) -> None:
    """The releases that passed their checks go live: links, processes, sites, health gates."""
    each(apps, guards, live, state=state, changes=changes)
    each(apps, guards, limits.limits, state=state)
    reactions = each(apps, guards, supervisor.program, settings=settings, state=state, changes=changes)
    each(apps, guards, schedule.schedule, state=state)
    certificates = each(tls.ends_here(apps), guards, tls.certificate, state=state)
    tls.acme_client(apps=tls.ends_here(apps), state=state)
    nginx_reload = nginx.sites(apps=apps, removed=removed, all_apps=all_apps, state=state,
                               certificates=certificates, guards=guards)
    each([app for app in tls.ends_here(apps) if tls.acme_app(app)], guards, tls.acme, state=state, unguarded=True)
    each(apps, guards, health.gate, state=state, reactions=reactions, nginx_reload=nginx_reload,
         keep=settings.keep_releases, changes=changes, unguarded=True)


# One run at a time; a targeted run leaves hosts without its apps alone.
with lock.held(apps or removed or served or balanced, taken=lock.LOCK in state.paths):
    roles()
    if apps or removed:
        app_host()
    steps.failures(guards=list(guards.values()))
