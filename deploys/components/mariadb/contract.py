"""MariaDB as the contract knows it: `database: {"engine": "mariadb"}`, on the app's own host."""

from __future__ import annotations

from deploys.model import defaults
from deploys.model.inventory import App, HostSettings
from deploys.model.schema import Engine


def database_url(app: App) -> str:
    """The app's account over the local socket: no host, no password."""
    return f"mysql://{app.name}@/{app.name}?unix_socket={defaults.MARIADB_SOCKET}"


def _driver(settings: HostSettings) -> str:
    return settings.mariadb_driver


ENGINE = Engine("mariadb", "an account and database named after the app, the unix_socket plugin",
                driver=_driver, url=database_url, backup="mariadb/backup_mariadb.py")
