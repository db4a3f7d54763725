"""MariaDB, for the apps that choose it: one account and one database per app, with least privilege.

Authentication is MariaDB's unix_socket plugin over the local socket, the analogue of PostgreSQL's
peer authentication: the kernel vouches for the app's system user, which is its account, so there
is no password to generate, store, leak or rotate, and no other system user can log in as it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import deploy

from deploys.components import Component, DatabaseEngine, Packages, Service
from deploys.components.mariadb.contract import ENGINE
from deploys.engine import ops
from deploys.engine.ops import Guard
from deploys.model import defaults
from deploys.model.inventory import App, HostSettings
from deploys.model.programs import TEMPLATES
from facts.state import State

# SQL as root, which Debian's MariaDB identifies by unix_socket too. Statements go in single
# quotes: identifiers in backticks, strings in double quotes (app names are [a-z0-9_]).
MARIADB = "mariadb --batch -e"


# The apps' accounts (and their authentication plugin), databases and grants, as root.
PROBE = (TEMPLATES / "mariadb" / "probe.sh").read_text()
SERVICE = Service("mariadb", "mariadb-admin ping --silent >/dev/null 2>&1", for_checks=True)


def local(apps: Sequence[App]) -> list[App]:
    """The apps whose MariaDB database is on their host (an absent app's may be either engine's)."""
    return [app for app in apps if app.database == "mariadb" or not app.present]


def accounts(state: State) -> dict[str, str]:
    """Account -> its authentication plugin."""
    return {name: plugin for name, plugin in state.records.get("mariadb.account", [])}


def databases(state: State) -> set[str]:
    return {name for name, *_ in state.records.get("mariadb.database", [])}


def grants(state: State) -> dict[str, str]:
    """Account -> the database pattern of its grant."""
    return {name: pattern for name, pattern in state.records.get("mariadb.grant", [])}


def exists(app: App, state: State) -> bool:
    """Whether the app's database was there before this run."""
    return app.name in databases(state)


def _packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    used = any(app.present and app.database == "mariadb" for app in apps)
    return Packages(checks=(defaults.MARIADB_PACKAGE,)) if used else Packages()


def _services(apps: Sequence[App]) -> Sequence[Service]:
    return [SERVICE] if any(app.present and app.database == "mariadb" for app in apps) else []


def _probe(apps: Sequence[App]) -> str:
    names = [app.name for app in local(apps)]
    return PROBE.replace("NAMES", ", ".join(f"'{name}'" for name in names)) if names else ""


def grant_pattern(app: App) -> str:
    """The database name as GRANT takes it: `_` is a wildcard there, and would let `my_app` reach
    a database `myxapp` of another app."""
    return app.name.replace("_", "\\_")


@deploy("MariaDB")
def database(app: App, state: State, guard: Guard) -> None:
    """The app's account (unix_socket, no global privilege) and its own utf8mb4 database, on
    which it has every privilege but GRANT. A failure stops this app's deploy only."""
    account = f'"{app.name}"@"localhost"'
    statements = []
    plugin = accounts(state).get(app.name)
    if plugin is None:
        statements.append(f"CREATE USER {account} IDENTIFIED VIA unix_socket")
    elif plugin != "unix_socket":
        statements.append(f"ALTER USER {account} IDENTIFIED VIA unix_socket")
    if not exists(app, state):
        statements.append(f"CREATE DATABASE `{app.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    if grants(state).get(app.name) != grant_pattern(app):
        statements.append(f"GRANT ALL PRIVILEGES ON `{grant_pattern(app)}`.* TO {account}")
    guard.watch(ops.command(
        name=f"{app.name}: MariaDB account and database",
        command=f"{MARIADB} '{'; '.join(statements)}'",
        needed=bool(statements),
        reason=f"account and database {app.name} exist, the account identified by its system user",
        _ignore_errors=True,
    ))


def drop(app: App, state: State) -> None:
    ops.command(
        name=f"{app.name}: MariaDB database and account dropped",
        command=f"{MARIADB} 'DROP DATABASE IF EXISTS `{app.name}`; DROP USER IF EXISTS \"{app.name}\"@\"localhost\"'",
        needed=app.name in databases(state) or app.name in accounts(state),
        reason=f"{app.name} has no MariaDB database",
    )


COMPONENT = Component("mariadb", packages=_packages, services=_services, probe=_probe,
                      database=DatabaseEngine(ENGINE, deploy=database, drop=drop))
