#!/usr/bin/python3
# managed by djangohost: /usr/local/sbin/djangohost-backup, the backups of each app of this host
"""Take, verify, prune, list and restore one app's backups; run as root on the host.

    djangohost-backup take APP [--kind scheduled|manual] [--name NAME]
    djangohost-backup take APP --before RELEASE     # before RELEASE migrates (none if no tables)
    djangohost-backup list APP                      # good backups, newest last, one JSON per line
    djangohost-backup restore APP NAME [--media]

A backup is a directory <BACKUPS>/<app>/<name>/ (root only) holding the database's dump, made as
the app's own role or account (PostgreSQL: `db.dump`, pg_dump -Fc; MariaDB: `db.sql.gz`),
`media.tar.gz` and `manifest.json` (each file's size and sha256, and the database the dump reads
back as). It is written as <name>.partial and takes its name only once verified, so every
directory without a suffix is a good backup. Names sort by time: 20261123T031700-scheduled,
20261123T101500-manual, 20261123T101502-before-<release>.

The deploy (deploys/components/backups/) ships this file as it is and writes each app's settings to
<CONFIG>/<app>.json; the controller imports it for the retention of pulled backups.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import hashlib
import importlib.machinery
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

BACKUPS = Path("/var/backups/djangohost")
CONFIG = Path("/etc/djangohost/backup")
# Root's own directory of locks (deploys.model.paths.RUN_DIR): in /run/lock any user could hold an app's
# lock (its backups would wait forever) or put a link there (root would truncate what it names).
LOCKS = Path("/run/djangohost")
# The host's djangohost-safe (templates/engine/djangohost-safe.py): what the tools of an app run print
# reaches the operator's terminal escaped by its function.
SAFE_TOOL = "/usr/local/sbin/djangohost-safe"
MEDIA, MANIFEST = "media.tar.gz", "manifest.json"
REGULAR = ("scheduled", "manual")
NAME_RE = re.compile(r"[0-9]{8}T[0-9]{6}-(scheduled|manual|before-[0-9A-Za-z_-]+)")
# What an app's database and media directory are called while a restore replaces them, and after.
RESTORING, REPLACED = "-restore", "-before-restore-"
UNRESTORABLE = "its dump cannot be restored (the error is above); the app's database is as it was"


class Refused(Exception):
    """A backup that cannot be taken or restored: the message says why."""


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, **kwargs)


def output(*command: str, **kwargs) -> str:
    return run(*command, stdout=subprocess.PIPE, text=True, **kwargs).stdout


# First in every session: nothing an app made (a function, a view named like the catalog) is found
# before PostgreSQL's own; every name is pg_catalog's, written so, too.
SAFE_PATH = "SET search_path = pg_catalog, pg_temp"


def psql(*sql: str) -> str:
    """SQL as PostgreSQL's superuser in the `postgres` database, never in an app's (whose owner
    decides what its names mean there), stopping at the first error; the rows, tab-separated."""
    statements = [arg for statement in (SAFE_PATH, *sql) for arg in ("-c", statement)]
    return output("runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", "postgres",
                  *statements)


def mariadb(sql: str) -> str:
    """SQL as MariaDB's root (identified by unix_socket); the rows, tab-separated."""
    return output("mariadb", "--batch", "--skip-column-names", "-e", sql)


def ident(name: str) -> str:
    """A MariaDB identifier as SQL names it: in backticks, a backtick in it doubled."""
    return "`" + name.replace("`", "``") + "`"


def printable(text: str) -> str:
    """Text an app controls with its control characters escaped (see SAFE_TOOL)."""
    loader = importlib.machinery.SourceFileLoader("djangohost_safe", SAFE_TOOL)
    module = types.ModuleType(loader.name)
    loader.exec_module(module)
    escaped: str = module.printable(text, "\n\t")
    return escaped


def as_app(user: str, *command: str, stdin: Any = subprocess.DEVNULL, stdout: Any = None) -> str:
    """`command` run as the app's `user`: in a session of its own, with nothing of root's terminal
    (no standard input of root's, its errors through a file, printed escaped); what it printed,
    when `stdout` is not given. Raises CalledProcessError when it fails."""
    with tempfile.TemporaryFile() as errors:
        done = subprocess.run(["runuser", "-u", user, "--", *command], stdin=stdin,
                              stdout=stdout or subprocess.PIPE, stderr=errors, start_new_session=True)
        report(errors)
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, command)
    return "" if stdout else done.stdout.decode(errors="replace")


def report(errors: IO[bytes], limit: int = 65536) -> None:
    """Print the last `limit` bytes of what a command of the app's wrote as errors, escaped."""
    errors.seek(0, os.SEEK_END)
    errors.seek(max(0, errors.tell() - limit))
    text = errors.read().decode(errors="backslashreplace")
    if text:
        sys.stderr.write(printable(text))
        sys.stderr.flush()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def created(name: str) -> datetime.datetime:
    return datetime.datetime.strptime(name[:15], "%Y%m%dT%H%M%S").replace(tzinfo=datetime.UTC)


def kind(name: str) -> str:
    return name[16:].split("-", 1)[0]


def retained(names: Iterable[str], keep_daily: int, keep_weekly: int, keep_migrations: int) -> set[str]:
    """The backups to keep: every regular (scheduled or manual) one of the day before the newest,
    the newest of each of the last `keep_daily` days and `keep_weekly` ISO weeks that have one,
    the newest `keep_migrations` taken before a migration, and the newest backup of all."""
    names = sorted(names, reverse=True)
    keep = set(names[:1])
    regular = [name for name in names if kind(name) in REGULAR]
    if regular:
        recent = created(regular[0]) - datetime.timedelta(days=1)
        keep.update(name for name in regular if created(name) > recent)
    for count, period in ((keep_daily, lambda n: created(n).date()),
                          (keep_weekly, lambda n: created(n).isocalendar()[:2])):
        newest: dict[object, str] = {}
        for name in regular:
            newest.setdefault(period(name), name)
        keep.update(list(newest.values())[:count])
    keep.update([name for name in names if kind(name) == "before"][:keep_migrations])
    return keep


class App:
    """One app's backup settings, as the deploy wrote them."""

    def __init__(self, name: str) -> None:
        path = CONFIG / f"{name}.json"
        if not path.is_file():
            raise Refused(f"app {name} has no backup settings ({path}); deploy it first")
        settings = json.loads(path.read_text())
        self.name: str = settings["app"]
        self.home = Path(settings["home"])
        self.database: Postgres | MariaDB | None = (ENGINES[settings["engine"]](self.name) if settings["engine"]
                                                    else None)
        self.media: bool = settings["media"]
        self.programs: list[str] = settings.get("programs", [self.name])
        self.keep: tuple[int, int, int] = (settings["keep_daily"], settings["keep_weekly"],
                                           settings["keep_migrations"])
        self.dir = BACKUPS / self.name

    def good(self) -> list[str]:
        """Its good backups, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(entry.name for entry in self.dir.iterdir()
                      if NAME_RE.fullmatch(entry.name) and (entry / MANIFEST).is_file())

    def lock(self):
        """Held for the whole of a take or restore: runs of one app never overlap."""
        handle = os.fdopen(os.open(run_dir() / f"backup-{self.name}.lock",
                                   os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), "w")
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle


def run_dir() -> Path:
    """LOCKS, made root's alone (0700) if need be; refused when it is a link or someone else's (as
    templates/engine/run-dir.sh.j2 does for the shell)."""
    try:
        LOCKS.mkdir(mode=0o700)
    except FileExistsError:
        pass
    status = os.lstat(LOCKS)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != 0:
        raise Refused(f"{LOCKS} is not a directory of root's; root keeps its locks there: remove it")
    if stat.S_IMODE(status.st_mode) != 0o700:
        os.chmod(LOCKS, 0o700)
    return LOCKS


def unreadable(dumped_with: str, reader: str, engine: str) -> str | None:
    """Why `reader` (a client's --version) cannot read a dump made by `dumped_with`, if it is of
    a newer major version."""
    def major(version: str) -> int:
        found = re.search(r"\) ([0-9]+)", version)
        return int(found.group(1)) if found else 0

    if major(dumped_with) > major(reader):
        return (f"it was dumped by {engine} {major(dumped_with)} and this host has {engine} {major(reader)}, "
                f"which cannot read it: restore it on a host with {engine} {major(dumped_with)} or later")
    return None


class Postgres:
    """An app's PostgreSQL database: dumped (pg_dump -Fc) and restored (pg_restore) as the app's
    own role, so nothing in a dump runs with more rights than the app has."""

    file = "db.dump"

    def __init__(self, app: str) -> None:
        self.app = app

    def has_tables(self) -> bool:
        """Asked as the app's own role, in its database: nothing it made there runs with more rights
        than its own (as the superuser, its views and functions would have run as the superuser)."""
        sql = ("select pg_catalog.count(*) from pg_catalog.pg_tables where schemaname operator(pg_catalog.<>) "
               "'pg_catalog' and schemaname operator(pg_catalog.<>) 'information_schema'")
        return as_app(self.app, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", self.app, "-c", SAFE_PATH,
                      "-c", sql).strip() != "0"

    def dump(self, path: Path) -> None:
        """The dump, then read back whole (every table's data): pg_restore --list reads only its
        table of contents, which a dump cut short still has. Both as the app: the dump is made of
        the app's data, and pg_dump runs as the app, whose user could have changed what it wrote."""
        with path.open("wb") as out:
            as_app(self.app, "pg_dump", "-Fc", "--no-owner", self.app, stdout=out)
        with path.open("rb") as dump:
            as_app(self.app, "pg_restore", "-f", "/dev/null", stdin=dump, stdout=subprocess.DEVNULL)

    def version(self) -> str:
        return output("pg_dump", "--version").strip()

    def readable(self, dumped_with: str) -> str | None:
        """Why this host cannot restore a dump made by `dumped_with` (pg_dump --version), if it
        cannot: pg_restore reads the dumps of its own major version and older ones only."""
        return unreadable(dumped_with, output("pg_restore", "--version"), "PostgreSQL")

    def dbname(self, path: Path) -> str | None:
        """The database the dump was taken of, as pg_restore lists it (run as the app: see dump())."""
        with path.open("rb") as dump:
            listed = as_app(self.app, "pg_restore", "--list", stdin=dump)
        for line in listed.splitlines():
            if line.startswith(";") and line[1:].strip().startswith("dbname:"):
                return line.split(":", 1)[1].strip()
        return None

    def load(self, path: Path, into: str) -> None:
        psql(f'DROP DATABASE IF EXISTS "{into}"', f'CREATE DATABASE "{into}" OWNER "{self.app}"',
             f'REVOKE CONNECT ON DATABASE "{into}" FROM PUBLIC')
        with path.open("rb") as dump:
            as_app(self.app, "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
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


class MariaDB:
    """An app's MariaDB database: dumped (mariadb-dump, gzipped) and loaded as the app's own
    account. MariaDB cannot rename a database: a restore moves the tables."""

    file = "db.sql.gz"

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
                run("gzip", "-c", stdin=dump.stdout, stdout=out)
            failed = dump.wait() != 0
            report(errors)
        if failed:
            raise Refused(f"mariadb-dump {self.app} failed")

    def version(self) -> str:
        return output("mariadb-dump", "--version").strip()

    def readable(self, dumped_with: str) -> str | None:
        return None  # SQL: any MariaDB reads it

    def dbname(self, path: Path) -> str | None:
        """The database named in the dump's header, once the whole file reads and the dump
        says it completed."""
        text = output("zcat", str(path), errors="replace")
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
        as_app(self.app, "mariadb", into, stdin=unzip.stdout, stdout=subprocess.DEVNULL)
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


ENGINES: dict[str, type[Postgres] | type[MariaDB]] = {"postgresql": Postgres, "mariadb": MariaDB}


def archive_media(app: App, target: Path) -> None:
    """The media directory as it is (links stored as links, never followed), then read back.
    Archived as the app: what it holds that the app cannot read (a hard link to a file of root's)
    stays out, and a file it cannot read does not stop its backup."""
    with (target / MEDIA).open("wb") as archive:
        as_app(app.name, "tar", "--ignore-failed-read", "-czf", "-", "-C", str(app.home), "media", stdout=archive)
    run("tar", "-tzf", str(target / MEDIA), stdout=subprocess.DEVNULL)


def take(app: App, name: str) -> str:
    """Write, verify and record the backup `name`, then prune; the name, or "" when skipped."""
    with app.lock():
        if kind(name) == "before" and (app.database is None or not app.database.has_tables()):
            return ""  # nothing a migration could destroy
        app.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for leftover in app.dir.glob("*.partial"):  # of a run that died; none runs now
            shutil.rmtree(leftover)
        if (app.dir / name).exists():
            raise Refused(f"backup {name} exists")
        partial = app.dir / f"{name}.partial"
        partial.mkdir(mode=0o700)
        os.umask(0o077)
        manifest: dict[str, object] = {"app": app.name, "name": name, "kind": kind(name),
                                       "created": int(created(name).timestamp())}
        if app.database:
            app.database.dump(partial / app.database.file)
            dbname = app.database.dbname(partial / app.database.file)
            if dbname != app.name:
                raise Refused(f"the dump does not read back as database {app.name} ({dbname})")
            manifest["database"] = dbname
            manifest["dumped_with"] = app.database.version()
        if app.media:
            archive_media(app, partial)
        manifest["files"] = {file.name: {"size": file.stat().st_size, "sha256": sha256(file)}
                             for file in sorted(partial.iterdir())}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        partial.rename(app.dir / name)
        prune(app)
        forget_replaced(app)
    return name


def prune(app: App) -> None:
    keep = retained(app.good(), *app.keep)
    for name in app.good():
        if name not in keep:
            shutil.rmtree(app.dir / name)


def forget_replaced(app: App) -> None:
    """What a restore replaced is kept until the next good backup: then it goes."""
    if app.database:
        app.database.forget(f"{app.name}{REPLACED}")
    for directory in app.home.glob(f"media{REPLACED}*"):
        shutil.rmtree(directory)


def verified(app: App, name: str) -> dict:
    """The manifest of backup `name` once its files match it and it is `app`'s own."""
    directory = app.dir / name
    if not NAME_RE.fullmatch(name) or not (directory / MANIFEST).is_file():
        raise Refused(f"app {app.name} has no backup {name} (backups: {', '.join(app.good()) or 'none'})")
    manifest = json.loads((directory / MANIFEST).read_text())
    if manifest.get("app") != app.name:
        raise Refused(f"backup {name} is app {manifest.get('app')}'s, not {app.name}'s")
    for file, expected in manifest["files"].items():
        if sha256(directory / file) != expected["sha256"]:
            raise Refused(f"backup {name}: {file} does not match its checksum")
    unable = app.database and app.database.readable(manifest.get("dumped_with", ""))
    if unable:
        raise Refused(f"backup {name}: {unable}")
    # The manifest can be edited; the dump says whose it is.
    if app.database and (directory / app.database.file).exists():
        try:
            dumped = app.database.dbname(directory / app.database.file)
        except subprocess.CalledProcessError:
            raise Refused(f"backup {name}: {UNRESTORABLE}") from None
        if dumped != app.name:
            raise Refused(f"backup {name}: its dump is not of database {app.name}")
    return manifest


def restore(app: App, name: str, media: bool) -> None:
    """Restore into a new database (and media directory), then swap them in while the app's
    processes are stopped; what they replace stays until the next good backup."""
    with app.lock():
        manifest = verified(app, name)
        directory = app.dir / name
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        fresh, old = f"{app.name}{RESTORING}", f"{app.name}{REPLACED}{stamp}"
        if app.database:
            if app.database.file not in manifest["files"]:
                raise Refused(f"backup {name} holds no {app.database.file}")
            try:
                app.database.load(directory / app.database.file, fresh)
            except subprocess.CalledProcessError:
                app.database.forget(fresh)
                raise Refused(f"backup {name}: {UNRESTORABLE}") from None
        new_media = app.home / f"media{RESTORING}"
        if media:
            if MEDIA not in manifest["files"]:
                raise Refused(f"backup {name} holds no media")
            shutil.rmtree(new_media, ignore_errors=True)
            new_media.mkdir(mode=0o750)
            shutil.chown(new_media, app.name, "www-data")
            with (directory / MEDIA).open("rb") as archive:  # unpacked as the app: links go nowhere else
                as_app(app.name, "tar", "-xzf", "-", "--strip-components=1", "-C", str(new_media), stdin=archive,
                       stdout=subprocess.DEVNULL)
        started = time.monotonic()
        subprocess.run(["supervisorctl", "stop", *app.programs], stdout=subprocess.DEVNULL)
        try:
            if app.database:
                app.database.swap(fresh, old)
            if media:
                (app.home / "media").rename(app.home / f"media{REPLACED}{stamp}")
                new_media.rename(app.home / "media")
        finally:
            subprocess.run(["supervisorctl", "start", *app.programs], stdout=subprocess.DEVNULL)
        print(f"djangohost: app {app.name}: restored {name}"
              f"{' (database and media)' if media else ''}; its processes were stopped for "
              f"{time.monotonic() - started:.1f} s; what it replaced is kept as {old} until the next good backup")


def list_backups(names: list[str]) -> int:
    """Print the manifest of each good backup of each app, a JSON line apiece (the status view
    asks for every app of the host at once); an app without backup settings is reported."""
    status = 0
    for app_name in names:
        try:
            app = App(app_name)
        except Refused as error:
            print(f"djangohost-backup: app {app_name}: {error}", file=sys.stderr)
            status = 1
            continue
        for name in app.good():  # by the name it has here
            print(json.dumps({**json.loads((app.dir / name / MANIFEST).read_text()), "name": name}))
    return status


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djangohost-backup")
    commands = parser.add_subparsers(dest="command", required=True)
    take_args = commands.add_parser("take")
    take_args.add_argument("app")
    take_args.add_argument("--kind", choices=REGULAR, default="manual")
    take_args.add_argument("--before", metavar="RELEASE")
    take_args.add_argument("--name")
    commands.add_parser("list").add_argument("apps", nargs="+", metavar="app")
    restore_args = commands.add_parser("restore")
    restore_args.add_argument("app")
    restore_args.add_argument("name")
    restore_args.add_argument("--media", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "list":
        return list_backups(args.apps)
    try:
        app = App(args.app)
        if args.command == "take":
            now = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            name = args.name or (f"{now}-before-{args.before}" if args.before else f"{now}-{args.kind}")
            if not NAME_RE.fullmatch(name):
                raise Refused(f"{name!r} is not a backup name such as {now}-manual")
            print(take(app, name) or f"djangohost: app {app.name}: no tables yet, nothing to back up")
        else:
            restore(app, args.name, args.media)
    except (Refused, subprocess.CalledProcessError) as error:
        print(f"djangohost-backup: app {args.app}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
