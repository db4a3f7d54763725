"""MariaDB, for the apps that choose it: one account and one database per app, with least privilege.

Authentication is MariaDB's unix_socket plugin over the local socket, the analogue of PostgreSQL's
peer authentication: the kernel vouches for the app's system user, which is its account, so there
is no password to generate, store, leak or rotate, and no other system user can log in as it.
"""

from __future__ import annotations

from pyinfra.api import deploy

from deploys.engine import ops
from deploys.engine.ops import Guard
from deploys.model import defaults
from deploys.model.inventory import App
from facts.state import State

# SQL as root, which Debian's MariaDB identifies by unix_socket too. Statements go in single
# quotes: identifiers in backticks, strings in double quotes (app names are [a-z0-9_]).
MARIADB = "mariadb --batch -e"


def database_url(app: App) -> str:
    """The app's account over the local socket: no host, no password."""
    return f"mysql://{app.name}@/{app.name}?unix_socket={defaults.MARIADB_SOCKET}"


def exists(app: App, state: State) -> bool:
    """Whether the app's database was there before this run."""
    return app.name in state.mariadb_databases


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
    plugin = state.mariadb_accounts.get(app.name)
    if plugin is None:
        statements.append(f"CREATE USER {account} IDENTIFIED VIA unix_socket")
    elif plugin != "unix_socket":
        statements.append(f"ALTER USER {account} IDENTIFIED VIA unix_socket")
    if not exists(app, state):
        statements.append(f"CREATE DATABASE `{app.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    if state.mariadb_grants.get(app.name) != grant_pattern(app):
        statements.append(f"GRANT ALL PRIVILEGES ON `{grant_pattern(app)}`.* TO {account}")
    guard.watch(ops.command(
        name=f"{app.name}: MariaDB account and database",
        command=f"{MARIADB} '{'; '.join(statements)}'",
        needed=bool(statements),
        reason=f"account and database {app.name} exist, the account identified by its system user",
        _ignore_errors=True,
    ))


def drop(app: App) -> str:
    """Shell: drop the app's database and account."""
    return f"{MARIADB} 'DROP DATABASE IF EXISTS `{app.name}`; DROP USER IF EXISTS \"{app.name}\"@\"localhost\"'"
