# managed by djangohost: djangohost-backup's MariaDB (templates/backups/djangohost-backup.py
# loads it by the engine's name from its engines directory, and gives it itself as `tool`)
"""How djangohost-backup dumps, checks, loads and swaps an app's MariaDB database."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from types import ModuleType

FILE = "db.sql.gz"
#: djangohost-backup, put in place by the tool as it loads this module (its engine()).
tool = ModuleType("djangohost_backup")


def mariadb(sql: str) -> str:
    """SQL as MariaDB's root (identified by unix_socket); the rows, tab-separated."""
    return tool.output("mariadb", "--batch", "--skip-column-names", "-e", sql)


def ident(name: str) -> str:
    """A MariaDB identifier as SQL names it: in backticks, a backtick in it doubled."""
    return "`" + name.replace("`", "``") + "`"


class Engine:
    """An app's MariaDB database: dumped (mariadb-dump, gzipped) and loaded as the app's own
    account. MariaDB cannot rename a database: a restore moves the tables."""

    file = FILE

    def __init__(self, app: str) -> None:
        self.app = app

    def grantee(self, database: str) -> str:
        # GRANT's database patterns take `_` as a wildcard: escaped, as deploys/components/mariadb/ does.
        return f"`{database.replace('_', chr(92) + '_')}`.* TO \"{self.app}\"@\"localhost\""

    def tables(self, database: str) -> list[str]:
        """The names of the tables of `database`, whole: the app names its tables, and a name may
        hold anything (a backtick, a space, a line break), so it is read as hex, and only ever put
        into SQL as ident() quotes it."""
        rows = mariadb(f"select hex(table_name) from information_schema.tables where table_schema = '{database}'")
        return [bytes.fromhex(row).decode() for row in rows.split()]

    def has_tables(self) -> bool:
        return bool(self.tables(self.app))

    def dump(self, path: Path) -> None:
        with tempfile.TemporaryFile() as errors:
            dump = subprocess.Popen(["runuser", "-u", self.app, "--", "mariadb-dump", "--single-transaction",
                                     "--routines", "--triggers", "--events", self.app], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=errors, start_new_session=True)
            with path.open("wb") as out:
                tool.run("gzip", "-c", stdin=dump.stdout, stdout=out)
            failed = dump.wait() != 0
            tool.report(errors)
        if failed:
            raise tool.Refused(f"mariadb-dump {self.app} failed")

    def version(self) -> str:
        return tool.output("mariadb-dump", "--version").strip()

    def readable(self, dumped_with: str) -> str | None:
        return None  # SQL: any MariaDB reads it

    def dbname(self, path: Path) -> str | None:
        """The database named in the dump's header, once the whole file reads and the dump
        says it completed."""
        text = tool.output("zcat", str(path), errors="replace")
        if "-- Dump completed" not in text[-200:]:
            return None
        for line in text.splitlines()[:10]:
            if "Database: " in line:
                return line.split("Database: ", 1)[1].strip()
        return None

    def load(self, path: Path, into: str) -> None:
        mariadb(f"DROP DATABASE IF EXISTS `{into}`; CREATE DATABASE `{into}` CHARACTER SET utf8mb4 "
                f"COLLATE utf8mb4_unicode_ci; GRANT ALL PRIVILEGES ON {self.grantee(into)}")
        unzip = subprocess.Popen(["zcat", str(path)], stdout=subprocess.PIPE)
        tool.as_app(self.app, "mariadb", into, stdin=unzip.stdout, stdout=subprocess.DEVNULL)
        unzip.wait()

    def swap(self, fresh: str, old: str) -> None:
        def moves(source: str, target: str) -> str:
            return ", ".join(f"{ident(source)}.{ident(table)} TO {ident(target)}.{ident(table)}"
                             for table in self.tables(source))

        statements = [f"CREATE DATABASE `{old}`"]
        for source, target in ((self.app, old), (fresh, self.app)):
            if self.tables(source):
                statements.append(f"RENAME TABLE {moves(source, target)}")
        statements += [f"DROP DATABASE `{fresh}`", f"REVOKE ALL PRIVILEGES ON {self.grantee(fresh)}".replace(
            " TO ", " FROM ")]
        mariadb("; ".join(statements))

    def forget(self, prefix: str) -> None:
        for row in mariadb("select hex(schema_name) from information_schema.schemata").split():
            database = bytes.fromhex(row).decode()
            if database.startswith(prefix):
                mariadb(f"DROP DATABASE {ident(database)}")
