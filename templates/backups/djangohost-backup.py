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
# Each database engine's part of this tool, by the engine's name (see engine()).
ENGINES = Path("/usr/local/lib/djangohost-backup")
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
        self.database: Any = engine(settings["engine"])(self.name) if settings["engine"] else None
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


def engine(name: str) -> Any:
    """The database engine `name` (its Engine class: dump, check, load, swap), from the module
    its component ships to ENGINES (templates/<component>/backup_<name>.py), given this tool."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise Refused(f"no database engine {name!r}")
    path = ENGINES / f"{name}.py"
    if not path.is_file():
        raise Refused(f"no database engine {name} on this host ({path}); deploy an app with it first")
    loader = importlib.machinery.SourceFileLoader(f"djangohost_backup_{name}", str(path))
    module = types.ModuleType(loader.name)
    loader.exec_module(module)
    module.tool = sys.modules[__name__]  # type: ignore[attr-defined]
    return module.Engine


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
