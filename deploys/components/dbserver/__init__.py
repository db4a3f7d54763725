"""The database server: PostgreSQL for the apps of app servers without the db role.

It listens on its private address (and locally), only over TLS with a certificate of its own
that the apps check (sslmode=verify-full), and hashes passwords with SCRAM. pg_hba lets each
app's role reach only its own database, only from that app's servers. Each role's password is
made here, kept root-only as a libpq password file line, and copied to the app's servers as the
run goes (credentials): it never reaches the machine running pyinfra's plan,
output or diffs.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterable

import gevent
from pyinfra import host, inventory
from pyinfra.api import Host, deploy
from pyinfra.context import ctx_host, ctx_state
from pyinfra.operations import apt

from deploys.components import Component, base, postgres
from deploys.engine import ops
from deploys.engine.ops import Guard
from deploys.engine.run import RUN
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.defaults import POSTGRESQL_PACKAGE
from deploys.model.inventory import App
from deploys.model.topology import ServedDatabase, Topology
from facts.state import HostState, PathsState, PathState, State

# How long the server's own certificate is valid (days); the apps trust exactly this certificate.
CERT_DAYS = 3650


def settings(address: str) -> dict[str, str]:
    """The server settings djangohost gives PostgreSQL (ALTER SYSTEM: no path that depends on its version)."""
    return {
        "listen_addresses": f"localhost,{address}",
        "ssl": "on",
        "ssl_cert_file": paths.db_cert(address),
        "ssl_key_file": paths.db_key(address),
        "ssl_min_protocol_version": "TLSv1.2",
        "password_encryption": "scram-sha-256",
        "hba_file": paths.DB_HBA,
    }


def hba_address(address: str) -> str:
    """An app server's address as pg_hba matches it: an IP address alone, or a host name."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return f"{ip}/{ip.max_prefixlen}"


def read_server_state(databases: list[ServedDatabase], address: str) -> State:
    names = [served.app.name for served in databases]
    return host.get_fact(
        HostState,
        paths=[paths.UPLOADS, paths.DB_SERVER, paths.DB_HBA, paths.DB_PASSWORD_TOOL, paths.db_cert(address),
               *(paths.db_password(served.app) for served in databases)],
        packages=[POSTGRESQL_PACKAGE],
        services=[(postgres.SERVICE.name, postgres.SERVICE.running)],
        probes=[postgres.probe(names)],
    )


def read_files(topology: Topology, names: Iterable[str]) -> None:
    """Start reading the files that the app servers copy from the database servers `names`, once a
    run. They plan at the same time, and would otherwise each wait for this read after their own
    (see credentials)."""
    for name in names:
        server = topology.hosts[name]
        if server not in RUN.server_files:
            files = [paths.db_cert(topology.address(name)), *(paths.db_password(served.app)
                                                              for served in topology.served[name])]
            RUN.server_files[server] = gevent.spawn(_read_files, server, files)


def server_files(name: str) -> dict[str, PathState]:
    """The files of the database server `name` that its app servers copy, as read_files reads them."""
    read = RUN.server_files[inventory.get_host(name)].get()
    if isinstance(read, Exception):
        raise read
    return read


def _read_files(server: Host, files: list[str]) -> dict[str, PathState] | Exception:
    # Returned, not raised: gevent would print a failed greenlet's traceback as well; each host
    # that waits for the read raises it (server_files), as if it had read the fact itself.
    try:
        with ctx_state.use(server.state), ctx_host.use(server):
            return server.get_fact(PathsState, paths=files)
    except Exception as error:
        return error


@deploy("Database server")
def server(databases: list[ServedDatabase], address: str) -> None:
    """PostgreSQL listening on `address` over TLS, and a role, a database and a password for each
    of `databases`."""
    state = read_server_state(databases, address)
    if POSTGRESQL_PACKAGE not in state.packages:
        apt.packages(name="Install PostgreSQL", packages=[POSTGRESQL_PACKAGE], update=True, no_recommends=True)
    base.start(["postgresql"], state)
    base.uploads(state)
    ops.directory(name="Database server's files", path=paths.DB_SERVER, owner="root", group="postgres",
                  mode="750", current=state.paths.get(paths.DB_SERVER))
    # openssl writes the key 0600 under umask 077; PostgreSQL reads it as its owner. The address has
    # one strict form (deploys.model.topology.is_address) and is quoted all the same.
    key, cert = shlex.quote(paths.db_key(address)), shlex.quote(paths.db_cert(address))
    certificate = ops.command(
        name=f"Certificate for {address}",
        command=(f"(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 f"-days {CERT_DAYS} -subj {shlex.quote(f'/CN={address}')} "
                 f"-addext {shlex.quote(f'subjectAltName={_san(address)}')} -keyout {key} -out {cert}) && "
                 f"chown postgres:postgres {key} && chmod 644 {cert}"),
        needed=paths.db_cert(address) not in state.paths,
        reason=f"the certificate for {address} exists",
    )
    hba = ops.file(
        name="Who may connect (pg_hba.conf)", path=paths.DB_HBA,
        content=render("dbserver/pg_hba.conf.j2", databases=[
            {"app": served.app, "clients": [hba_address(client) for client in served.clients]}
            for served in databases]),
        owner="root", group="postgres", mode="640", current=state.paths.get(paths.DB_HBA),
    )
    wanted = settings(address)
    changed = {name: value for name, value in wanted.items() if postgres.settings(state).get(name) != value}
    configured = ops.command(
        name="Server settings: address, TLS, SCRAM, pg_hba",
        command=" ".join([postgres.PSQL, *(f"-c {shlex.quote(f'ALTER SYSTEM SET {name} = {sql_string(value)}')}"
                                           for name, value in changed.items())]),
        needed=bool(changed),
        reason="the server has djangohost's settings",
    )
    # The address and pg_hba's place are read at start only; a restart applies every setting.
    restart = bool(changed) or certificate.will_change or postgres.restart_pending(state)
    ops.command(
        name="PostgreSQL restarted",
        command="systemctl restart postgresql" if state.systemd else "service postgresql restart",
        needed=restart, reason="no setting waits for a restart",
        _if=lambda: configured.did_change() or certificate.did_change() or postgres.restart_pending(state),
    )
    ops.command(
        name="PostgreSQL reloaded (pg_hba.conf)",
        command=f"{postgres.PSQL} -c 'SELECT pg_reload_conf()'",
        needed=hba.will_change and not restart, reason="pg_hba.conf is as it was", _if=hba.did_change,
    )

    ops.file(
        name="Password tool", path=paths.DB_PASSWORD_TOOL, content=render("dbserver/djangohost-db-password.j2"),
        owner="root", group="root", mode="700", current=state.paths.get(paths.DB_PASSWORD_TOOL),
    )
    for served in host.loop(databases):
        app = served.app
        postgres.database(app=app, state=state, guard=Guard(app.name))
        ops.command(
            name=f"{app.name}: password",
            command=f"{paths.DB_PASSWORD_TOOL} {app.name} {paths.db_password(app)}",
            needed=paths.db_password(app) not in state.paths,
            reason=f"{app.name} has its password",
        )


def credentials(app: App, state: State, guard: Guard) -> None:
    """On an app server: the app's password file and the database server's certificate, copied
    from the database server when they differ from its own (they are made there, see server())."""
    server = app.database_server
    assert server is not None
    theirs = server_files(server.host)
    copies = ((paths.pgpass(app), paths.db_password(app), app.name, "600", "password file"),
              (paths.db_server_cert(app), paths.db_cert(server.address), "root", "640", "server certificate"))
    for path, source, owner, mode, what in copies:
        mine, original = state.paths.get(path), theirs.get(source)
        guard.watch(ops.relay(
            name=f"{app.name}: {what}, from {server.host}",
            path=path, source=server.host, source_path=source, owner=owner, group=app.name, mode=mode,
            needed=(mine is None or original is None or mine.sha256 != original.sha256
                    or (mine.owner, mine.group, mine.mode) != (owner, app.name, mode)),
            _ignore_errors=True,
        ))


def sql_string(value: str) -> str:
    """A string literal of SQL: in single quotes, a quote in it doubled."""
    return "'" + value.replace("'", "''") + "'"


def _san(address: str) -> str:
    try:
        ipaddress.ip_address(address)
        return f"IP:{address}"
    except ValueError:
        return f"DNS:{address}"


# On an app server: the app's copy of its password and the server's certificate; the migrate lock.
COMPONENT = Component(
    "dbserver", host_paths=(paths.MIGRATE_LOCKED,),
    watched=lambda app: [paths.pgpass(app), paths.db_server_cert(app)] if app.database_server else [])
