"""Backups of every app: the tool that takes and restores them, each app's settings, the schedule.

The tool (deploys/backup_tool.py, installed as /usr/local/sbin/djangohost-backup) dumps an app's
database as the app's own role or account (by its engine's part of the tool, shipped beside it) and archives its media,
verifies both and prunes by the app's retention. cron runs it on every host, with systemd or
without: one mechanism, present on every Debian, whose runs the tool's lock keeps from overlapping.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from functools import partial
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy

from deploys.components import Component, Packages, notify, schedule
from deploys.engine import ops
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App, InventoryError
from deploys.model.programs import TEMPLATES, backup_tool, program
from facts.state import State

# The service that runs the schedule, and its package.
CRON = "cron"
# What encrypts pulled backups (an app's backup "age_recipient").
AGE = "age"


def packages(apps: list[App]) -> list[str]:
    return [CRON, *([AGE] if any(app.backup and app.backup.age_recipient for app in apps) else [])]


def take(app: App, before: str) -> str:
    """Shell: the dump taken before the release `before` migrates (none while the database has
    no tables); a failure stops the migration."""
    return f"{paths.BACKUP_TOOL} take {app.name} --before {before} >/dev/null"


@deploy("Backups")
def backups(apps: list[App], scheduled: list[App], state: State) -> None:
    """The tool, a root-only directory of backups, the settings of each of `apps` and the cron
    schedule of `scheduled` (every app of the host that is deployed or being deployed)."""
    ops.directories(name=f"Directories {paths.BACKUPS}, {paths.BACKUP_CONFIG}, {paths.BACKUP_ENGINES}",
                    directories=[(paths.BACKUPS, "root", "root", "700"), (paths.BACKUP_CONFIG, "root", "root", "700"),
                                 (paths.BACKUP_ENGINES, "root", "root", "755")],
                    current=state.paths)
    # cron reads /etc/cron.d files that only root can write (and not group- or world-writable).
    # A good backup is pushed off the host right after it is taken (deploys.components.offsite); a
    # failed backup or push is told (deploys.components.notify).
    schedule = render("backups/djangohost-backup.cron.j2", tool=paths.BACKUP_TOOL, log=paths.BACKUP_LOG,
                      notify=notify.TOOL, offsite=paths.OFFSITE_TOOL,
                      apps=[app for app in scheduled if app.backup and app.backup.cron])
    ops.files(name="Backup tool, settings, schedule", files=[
        ops.File(paths.BACKUP_TOOL, (TEMPLATES / "backups/djangohost-backup.py").read_text(), mode="755"),
        *(ops.File(path, (TEMPLATES / template).read_text()) for path, template in engines(apps).items()),
        *(ops.File(paths.backup_config(app), render("backups/app.json.j2", app=app), mode="600") for app in apps),
        ops.File(paths.BACKUP_CRON, schedule),
    ], current=state.paths)


def engines(apps: list[App]) -> dict[str, str]:
    """The backup tool's part for each database engine of `apps`: where it goes, its template."""
    return {paths.backup_engine(app): app.engine.backup for app in apps if app.database}


def files(app: App) -> list[str]:
    """The files of a backup the tool takes of `app` now."""
    return [*([program(app.engine.backup).FILE] if app.database else []),
            *([backup_tool.MEDIA] if app.backup and app.backup.media else []), backup_tool.MANIFEST]


@deploy("Pull backups")
def pull(app: App, backups: dict[str, list[str]], into: Path) -> None:
    """Copy each of `backups` (name -> its files) that `into` lacks to this machine, encrypted to
    the app's age_recipient if it has one (all but the manifest), check it against its manifest,
    then prune `into` by the app's retention."""
    assert app.backup is not None
    recipient = app.backup.age_recipient
    for name, names in host.loop(sorted(backups.items())):
        if (into / name).is_dir():
            continue
        ops.download(name=f"{app.name}: pull {name}{' (encrypted)' if recipient else ''}",
                     into=str(into / f"{name}.partial"), recipient=recipient,
                     files={f"{paths.BACKUPS}/{app.name}/{name}/{file}":
                            file + (".age" if recipient and file != backup_tool.MANIFEST else "") for file in names},
                     ready=partial(arrived, app, into, name))


def arrived(app: App, into: Path, name: str) -> None:
    """A pulled backup whose files match its manifest (encrypted ones: are there; age checks
    them as it decrypts) takes its name; then the oldest go."""
    partial_dir = into / f"{name}.partial"
    manifest = json.loads((partial_dir / backup_tool.MANIFEST).read_text())
    for file, expected in manifest["files"].items():
        plain = partial_dir / file
        if manifest["app"] != app.name or not (
                plain.is_file() and backup_tool.sha256(plain) == expected["sha256"]
                or (partial_dir / f"{file}.age").is_file()):
            raise InventoryError(f"host {host.name}, app {app.name}: pulled backup {name} does not match its "
                                 f"manifest ({file})")
    for file in partial_dir.iterdir():
        file.chmod(0o600)
    partial_dir.chmod(0o700)
    partial_dir.rename(into / name)
    assert app.backup is not None
    kept = backup_tool.retained([path.name for path in into.iterdir() if backup_tool.NAME_RE.fullmatch(path.name)],
                                app.backup.keep_daily, app.backup.keep_weekly, app.backup.keep_migrations)
    for path in into.iterdir():
        if backup_tool.NAME_RE.fullmatch(path.name) and path.name not in kept:
            shutil.rmtree(path)


COMPONENT = Component(
    "backups", packages=lambda apps, settings: Packages(checks=tuple(packages(list(apps)))),
    # cron takes the backups, and the dump before a migration needs the tool: before the checks.
    services=lambda apps: [dataclasses.replace(schedule.CRON, for_checks=True)],
    watched=lambda app: [paths.backup_config(app), *engines([app])],
    host_paths=(paths.BACKUPS, paths.BACKUP_TOOL, paths.BACKUP_CONFIG, paths.BACKUP_ENGINES, paths.BACKUP_CRON))
