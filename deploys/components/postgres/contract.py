"""PostgreSQL as the contract knows it: the engine of `database: true`."""

from __future__ import annotations

from urllib.parse import urlencode

from deploys.model import paths
from deploys.model.inventory import App, HostSettings
from deploys.model.schema import Engine

PORT = 5432


def database_url(app: App) -> str:
    """Peer authentication over the default socket directory: no host, no password. With a
    database server: its address, its certificate checked, the password in a password file."""
    server = app.database_server
    if server is None:
        return f"postgres://{app.name}@/{app.name}"
    address = f"[{server.address}]" if ":" in server.address else server.address
    options = {"sslmode": "verify-full", "sslrootcert": paths.db_server_cert(app), "passfile": paths.pgpass(app)}
    return f"postgres://{app.name}@{address}:{PORT}/{app.name}?{urlencode(options)}"


def _driver(settings: HostSettings) -> str:
    return settings.database_driver


ENGINE = Engine(
    "postgresql",
    "a role and database named after the app, peer authentication over the local socket (with a database "
    "server: TLS and a password made there)",
    driver=_driver, url=database_url, backup="postgres/backup_postgresql.py", on_database_server=True,
)
