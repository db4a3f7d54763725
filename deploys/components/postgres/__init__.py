"""PostgreSQL: one role and one database per app, with least privilege.

On the app's own host, authentication is peer over the local unix socket: the app's system user
is its role, so there is no password to generate, store, leak or rotate, and no other system user
can log in as it. An app whose database is on the database server (deploys.components.dbserver) connects
over TLS, checking the server's certificate, with a password made there and copied to the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyinfra.api import deploy

from deploys.components import Component, DatabaseEngine, Packages, Service
from deploys.components.postgres.contract import ENGINE
from deploys.engine import ops
from deploys.engine.ops import Guard
from deploys.model.defaults import POSTGRESQL_PACKAGE
from deploys.model.inventory import App, HostSettings
from deploys.model.programs import TEMPLATES
from facts.state import State

# psql as the postgres superuser, stopping at the first error, in the postgres database (never an
# app's, whose owner decides what names mean there), every name PostgreSQL's own.
PSQL = "runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'SET search_path = pg_catalog, pg_temp'"


# PostgreSQL's readiness, its roles and databases of the apps, and the settings djangohost gives
# the server (ALTER SYSTEM), in the postgres database (no app's), every name PostgreSQL's own. App
# names are ^[a-z][a-z0-9_]*$: safe as SQL literals. pg_ready is the service's check too (it costs
# 40 ms: once).
PROBE = (TEMPLATES / "postgres" / "probe.sh").read_text()
SERVICE = Service("postgresql", '[ -n "$pg_ready" ]', for_checks=True)


def local(apps: Sequence[App]) -> list[App]:
    """The apps whose PostgreSQL database is on their own host. An absent app's database may be
    either engine's: it is asked about."""
    return [app for app in apps if (app.database == "postgresql" or not app.present) and not app.database_server]


def probe(names: Sequence[str]) -> str:
    """HostState's fragment for the roles and databases `names` (and the server's settings)."""
    return PROBE.replace("NAMES", ", ".join(f"'{name}'" for name in names) or "''")


@dataclass
class Role:
    superuser: bool
    createdb: bool
    createrole: bool
    login: bool


@dataclass
class Database:
    owner: str
    public_connect: bool  # whether PUBLIC may connect (PostgreSQL's default)


def roles(state: State) -> dict[str, Role]:
    return {name: Role(*(flag == "1" for flag in flags)) for name, *flags in state.records.get("postgres.role", [])}


def databases(state: State) -> dict[str, Database]:
    return {name: Database(owner, public == "1") for name, owner, public in state.records.get("postgres.database", [])}


def settings(state: State) -> dict[str, str]:
    """The settings of ALTER SYSTEM (postgresql.auto.conf)."""
    return {name: value for name, value in state.records.get("postgres.setting", [])}


def restart_pending(state: State) -> bool:
    """Whether a changed setting waits for the server's restart."""
    return bool(state.records.get("postgres.restart"))


def _packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    return Packages(checks=(POSTGRESQL_PACKAGE,)) if any(app.present for app in local(apps)) else Packages()


def _services(apps: Sequence[App]) -> Sequence[Service]:
    return [SERVICE] if any(app.present for app in local(apps)) else []


def _probe(apps: Sequence[App]) -> str:
    return probe([app.name for app in local(apps)]) if local(apps) else ""


@deploy("PostgreSQL")
def database(app: App, state: State, guard: Guard) -> None:
    """The app's login role (no superuser, createdb or createrole) and its own database, which
    only that role may connect to. A failure stops this app's deploy only."""
    role = roles(state).get(app.name)
    wanted = f'"{app.name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
    guard.watch(ops.command(
        name=f"{app.name}: database role",
        command=f"{PSQL} -c 'CREATE ROLE {wanted}'" if role is None else f"{PSQL} -c 'ALTER ROLE {wanted}'",
        needed=role is None or (role.superuser, role.createdb, role.createrole, role.login)
        != (False, False, False, True),
        reason=f"role {app.name} exists with login only",
        _ignore_errors=True,
    ))

    db = databases(state).get(app.name)
    statements = []
    if db is None:
        statements.append(f'CREATE DATABASE "{app.name}" OWNER "{app.name}"')
    elif db.owner != app.name:
        statements.append(f'ALTER DATABASE "{app.name}" OWNER TO "{app.name}"')
    if db is None or db.public_connect:
        # PostgreSQL lets every role connect to every database unless told otherwise.
        statements.append(f'REVOKE CONNECT ON DATABASE "{app.name}" FROM PUBLIC')
    guard.watch(ops.command(
        name=f"{app.name}: database",
        command=" ".join([PSQL, *(f"-c '{statement}'" for statement in statements)]),
        needed=bool(statements),
        reason=f"database {app.name} exists, owned by {app.name}, closed to others",
        _ignore_errors=True,
    ))


def drop(app: App, state: State) -> None:
    ops.command(
        name=f"{app.name}: database and role dropped",
        command=f'{PSQL} -c \'DROP DATABASE IF EXISTS "{app.name}"\' -c \'DROP ROLE IF EXISTS "{app.name}"\'',
        needed=app.name in databases(state) or app.name in roles(state),
        reason=f"{app.name} has no PostgreSQL database",
    )


COMPONENT = Component("postgres", packages=_packages, services=_services, probe=_probe,
                      database=DatabaseEngine(ENGINE, deploy=database, drop=drop))
