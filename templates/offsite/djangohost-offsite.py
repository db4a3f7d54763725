#!/usr/bin/python3
# managed by djangohost: /usr/local/sbin/djangohost-offsite, the apps' backups copied off this host with restic
"""Push an app's good backups to its restic repository, prune and check it there, and fetch one
back; run as root on the host.

    djangohost-offsite push APP          # every good backup the repository lacks, then retention
    djangohost-offsite check APP         # restic check: exits 1 when the repository is damaged
    djangohost-offsite fetch APP [NAME]  # the newest (or NAME) back into the backups; prints its name
    djangohost-offsite list APP          # the backups in the repository, oldest first

Each app has a repository of its own with a password of its own (<CONFIG>/<app>.password, root
only), so one app's credentials open no other app's backups. A snapshot is one backup directory
(dump, media, manifest), tagged with the backup's name and kind and recorded under the host name
APP, so that a new server finds it. The backup tool (djangohost-backup, beside this file) names,
locks and verifies the backups; this program only moves them.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

CONFIG = Path("/etc/djangohost/offsite")
# What the last push and check did, for the status view and for people: root only.
STATUS = Path("/var/lib/djangohost/offsite")
# restic's own words, told apart: a repository that is not there yet (made on the first push),
# and a password that does not open it.
MISSING = "Is there a repository at the following location?"
WRONG_PASSWORD = "wrong password or no key found"


def backup_tool() -> types.ModuleType:
    """The backup tool (names, lock, checksums): djangohost-backup beside this file on a host,
    templates/backups/djangohost-backup.py in the repository."""
    here = Path(__file__).resolve()
    path = here.with_name("djangohost-backup")
    if not path.is_file():
        path = here.parent.parent / "backups" / "djangohost-backup.py"
    loader = importlib.machinery.SourceFileLoader("djangohost_backup_tool", str(path))
    module = types.ModuleType(loader.name)
    # Registered as imported modules are: the tool hands itself to its engines' parts by name.
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module


tool = backup_tool()
Refused = tool.Refused


class Repository:
    """One app's restic repository, as the deploy configured it (<CONFIG>/<app>.json)."""

    def __init__(self, app: str) -> None:
        path = CONFIG / f"{app}.json"
        if not path.is_file():
            raise Refused(f"app {app} has no offsite repository ({path}); set backup offsite and deploy")
        self.settings: dict[str, Any] = json.loads(path.read_text())
        self.app = app
        self.url: str = self.settings["repository"]

    def options(self) -> list[str]:
        """restic's options: the repository, the password file, and for SFTP the SSH command with
        the app's key and the pinned (or first-seen) host key."""
        options = ["--repo", self.url, "--password-file", str(CONFIG / f"{self.app}.password")]
        sftp = self.settings.get("sftp")
        if sftp:
            ssh = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                   "-o", f"UserKnownHostsFile={sftp['known_hosts']}",
                   "-o", f"StrictHostKeyChecking={'yes' if sftp['pinned'] else 'accept-new'}",
                   *(["-i", sftp["key"]] if sftp.get("key") else []),
                   *(["-p", str(sftp["port"])] if sftp.get("port") else []), f"{sftp['user']}@{sftp['host']}",
                   "-s", "sftp"]
            options += ["--option", "sftp.command=" + " ".join(ssh)]
        return options

    def environment(self) -> dict[str, str]:
        """restic's environment: no RESTIC_* of the caller's, S3 keys from the settings only."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("RESTIC_", "AWS_"))}
        s3 = self.settings.get("s3") or {}
        if s3:
            env.update(AWS_ACCESS_KEY_ID=s3["access_key_id"], AWS_SECRET_ACCESS_KEY=s3["secret_access_key"])
        return env

    def restic(self, *args: str, cwd: Path | None = None) -> str:
        """restic `args` on this repository; its output. Refused, with restic's last words, when it fails."""
        done = subprocess.run(["restic", *self.options(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env=self.environment(), cwd=cwd)
        if done.returncode:
            raise Refused(self.why(args[0], done.stderr))
        return done.stdout

    def why(self, command: str, errors: str) -> str:
        if WRONG_PASSWORD in errors:
            return (f"the password of its offsite repository {self.url} does not open it: restic says "
                    f"{WRONG_PASSWORD!r} (is it this app's password, as the inventory gives it?)")
        last = [line for line in errors.strip().splitlines() if line.strip()][-3:]
        return f"restic {command} on {self.url} failed: {tool.printable(' / '.join(last))}"

    def ready(self) -> None:
        """The repository, made the first time (never over one that a wrong password cannot open)."""
        done = subprocess.run(["restic", *self.options(), "cat", "config"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, env=self.environment())
        if done.returncode == 0:
            return
        if MISSING not in done.stderr:
            raise Refused(self.why("cat config", done.stderr))
        self.restic("init")
        print(f"djangohost-offsite: app {self.app}: made the repository {self.url}")

    def snapshots(self) -> dict[str, dict]:
        """The app's backups in the repository: backup name -> its snapshot."""
        listed = json.loads(self.restic("snapshots", "--json", "--host", self.app) or "[]")
        return {tag: snapshot for snapshot in listed for tag in snapshot.get("tags") or []
                if tool.NAME_RE.fullmatch(tag)}


def push(app: Any, repository: Repository) -> None:
    """Each good backup the repository lacks, then the app's retention there."""
    repository.ready()
    there = repository.snapshots()
    for name in app.good():
        if name in there:
            continue
        started = time.monotonic()
        # Dated when it was taken, not pushed: the retention there counts days as it does here.
        taken = tool.created(name).astimezone().strftime("%Y-%m-%d %H:%M:%S")  # restic reads local time
        lines = repository.restic("backup", "--json", "--host", app.name, "--tag", name, "--tag", tool.kind(name),
                                  "--time", taken, ".", cwd=app.dir / name).splitlines()
        summary = json.loads(lines[-1]) if lines else {}
        print(f"djangohost-offsite: app {app.name}: pushed {name} to {repository.url} "
              f"({summary.get('data_added', 0)} bytes added, {time.monotonic() - started:.1f} s)")
    forget(app, repository)


def forget(app: Any, repository: Repository) -> None:
    """The local retention (backup_tool.retained), as restic says it: every regular backup of the
    day before the newest, the newest of each of the last keep_daily days and keep_weekly weeks,
    the newest keep_migrations dumps taken before a migration, and always the newest of each."""
    keep_daily, keep_weekly, keep_migrations = app.keep
    common = ["forget", "--json", "--host", app.name, "--group-by", "host"]
    forgotten = [repository.restic(*common, "--tag", "scheduled", "--tag", "manual", "--keep-last", "1",
                                   "--keep-within", "1d", *(["--keep-daily", str(keep_daily)] if keep_daily else []),
                                   *(["--keep-weekly", str(keep_weekly)] if keep_weekly else [])),
                 repository.restic(*common, "--tag", "before", "--keep-last", str(max(1, keep_migrations)))]
    # Pruning rewrites the repository's packs: only when a snapshot went.
    if any(group.get("remove") for output in forgotten for group in json.loads(output or "[]") or []):
        repository.restic("prune")


def check(repository: Repository) -> None:
    """The repository's structure, and a random 5% of its data read back (bit rot on the storage
    host is found in about 20 weeks without reading everything every week)."""
    repository.restic("check", "--read-data-subset=5%")
    print(f"djangohost-offsite: app {repository.app}: restic check of {repository.url} passed")


def fetch(app: Any, repository: Repository, wanted: str | None) -> str:
    """The backup `wanted` (or the newest) from the repository into the app's backups, checked
    against its manifest; its name. One the host has already is not fetched again."""
    there = repository.snapshots()
    if wanted and wanted not in there:
        raise Refused(f"its offsite repository has no backup {wanted} (there: {', '.join(sorted(there)) or 'none'})")
    if not there:
        raise Refused(f"its offsite repository {repository.url} holds no backup")
    name = wanted or sorted(there)[-1]
    if name in app.good():
        return name
    app.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = app.dir / f"{name}.partial"  # a leftover goes with the next take's
    shutil.rmtree(target, ignore_errors=True)
    # Pushed from inside the backup's directory: the snapshot holds its files at its root.
    repository.restic("restore", there[name]["id"], "--target", str(target))
    restored = target
    manifest = json.loads((restored / tool.MANIFEST).read_text())
    if manifest.get("app") != app.name or manifest.get("name") not in (name, None):
        raise Refused(f"offsite backup {name} is app {manifest.get('app')}'s, not {app.name}'s")
    for file, expected in manifest["files"].items():
        if tool.sha256(restored / file) != expected["sha256"]:
            raise Refused(f"offsite backup {name}: {file} does not match its checksum")
    for path in (restored, *restored.iterdir()):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
    restored.rename(app.dir / name)
    return name


def record(app: str, command: str, error: str | None) -> None:
    """What the last push or check did, root only (<STATUS>/<app>.json)."""
    STATUS.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = STATUS / f"{app}.json"
    status = json.loads(path.read_text()) if path.is_file() else {}
    status.update({"app": app, command: {"at": int(time.time()), "ok": error is None, "error": error}})
    path.write_text(json.dumps(status) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djangohost-offsite")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("push", "check", "fetch", "list"):
        sub = commands.add_parser(command)
        sub.add_argument("app")
        if command == "fetch":
            sub.add_argument("name", nargs="?")
    args = parser.parse_args(argv)
    os.umask(0o077)
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", args.app):  # it names root's files
        print(f"djangohost-offsite: {args.app!r} is not an app's name", file=sys.stderr)
        return 2
    error = None
    try:
        app, repository = tool.App(args.app), Repository(args.app)
        if args.command == "list":
            print("\n".join(sorted(repository.snapshots())))
            return 0
        with app.lock():
            if args.command == "push":
                push(app, repository)
            elif args.command == "check":
                check(repository)
            else:
                print(fetch(app, repository, args.name))
    except Refused as refused:
        error = str(refused)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(f"djangohost-offsite: app {args.app}: {args.command} FAILED at {stamp}: {error}", file=sys.stderr)
    if args.command in ("push", "check"):
        record(args.app, args.command, error)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
