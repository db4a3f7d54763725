# managed by djangohost: djangohost-backup's PostgreSQL (templates/backups/djangohost-backup.py
# loads it by the engine's name from its engines directory, and gives it itself as `tool`)
"""How djangohost-backup dumps, checks, loads and swaps an app's PostgreSQL database."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType

FILE = "db.dump"
#: djangohost-backup, put in place by the tool as it loads this module (its engine()).
tool = ModuleType("djangohost_backup")


# First in every session: nothing an app made (a function, a view named like the catalog) is found
# before PostgreSQL's own; every name is pg_catalog's, written so, too.
SAFE_PATH = "SET search_path = pg_catalog, pg_temp"


def psql(*sql: str) -> str:
    """SQL as PostgreSQL's superuser in the `postgres` database, never in an app's (whose owner
    decides what its names mean there), stopping at the first error; the rows, tab-separated."""
    statements = [arg for statement in (SAFE_PATH, *sql) for arg in ("-c", statement)]
    return tool.output("runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", "postgres",
                  *statements)


class Engine:
    """An app's PostgreSQL database: dumped (pg_dump -Fc) and restored (pg_restore) as the app's
    own role, so nothing in a dump runs with more rights than the app has."""

    file = FILE

    def __init__(self, app: str) -> None:
        self.app = app

    def has_tables(self) -> bool:
        """Asked as the app's own role, in its database: nothing it made there runs with more rights
        than its own (as the superuser, its views and functions would have run as the superuser)."""
        sql = ("select pg_catalog.count(*) from pg_catalog.pg_tables where schemaname operator(pg_catalog.<>) "
               "'pg_catalog' and schemaname operator(pg_catalog.<>) 'information_schema'")
        return tool.as_app(self.app, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", self.app, "-c", SAFE_PATH,
                      "-c", sql).strip() != "0"

    def dump(self, path: Path) -> None:
        """The dump, then read back whole (every table's data): pg_restore --list reads only its
        table of contents, which a dump cut short still has. Both as the app: the dump is made of
        the app's data, and pg_dump runs as the app, whose user could have changed what it wrote."""
        with path.open("wb") as out:
            tool.as_app(self.app, "pg_dump", "-Fc", "--no-owner", self.app, stdout=out)
        with path.open("rb") as dump:
            tool.as_app(self.app, "pg_restore", "-f", "/dev/null", stdin=dump, stdout=subprocess.DEVNULL)

    def version(self) -> str:
        return tool.output("pg_dump", "--version").strip()

    def readable(self, dumped_with: str) -> str | None:
        """Why this host cannot restore a dump made by `dumped_with` (pg_dump --version), if it
        cannot: pg_restore reads the dumps of its own major version and older ones only."""
        return tool.unreadable(dumped_with, tool.output("pg_restore", "--version"), "PostgreSQL")

    def dbname(self, path: Path) -> str | None:
        """The database the dump was taken of, as pg_restore lists it (run as the app: see dump())."""
        with path.open("rb") as dump:
            listed = tool.as_app(self.app, "pg_restore", "--list", stdin=dump)
        for line in listed.splitlines():
            if line.startswith(";") and line[1:].strip().startswith("dbname:"):
                return line.split(":", 1)[1].strip()
        return None

    def load(self, path: Path, into: str) -> None:
        psql(f'DROP DATABASE IF EXISTS "{into}"', f'CREATE DATABASE "{into}" OWNER "{self.app}"',
             f'REVOKE CONNECT ON DATABASE "{into}" FROM PUBLIC')
        with path.open("rb") as dump:
            tool.as_app(self.app, "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                   "--single-transaction", "-d", into, stdin=dump, stdout=subprocess.DEVNULL)

    def swap(self, fresh: str, old: str) -> None:
        """The app's database becomes `old`, and `fresh` the app's (nobody connected: the app's
        processes are stopped and whatever else was connected is let go)."""
        psql(f"select pg_catalog.pg_terminate_backend(pid) from pg_catalog.pg_stat_activity "
             f"where datname = '{self.app}'",
             f'ALTER DATABASE "{self.app}" RENAME TO "{old}"', f'ALTER DATABASE "{fresh}" RENAME TO "{self.app}"')

    def forget(self, prefix: str) -> None:
        for database in psql(f"select datname from pg_catalog.pg_database "
                             f"where pg_catalog.starts_with(datname, '{prefix}')").split():
            psql(f'DROP DATABASE "{database}"')
