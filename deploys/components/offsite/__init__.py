"""Off-host copies of every app's backups, with restic: the tool that pushes, checks and fetches
them, each app's repository settings and credentials (root only), the schedule of the checks.

Each good backup is pushed by the backup's own cron line (deploys.components.backups: `take &&
djangohost-offsite push`) and by deploys/backup.py; a restore from the repository alone is
deploys/restore.py with `from=remote`. Each app has a repository of its own (the inventory's base
+ /<app>) and a password of its own, so one app's credentials open no other app's backups.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import deploy

from deploys.components import Component, Packages
from deploys.engine import ops
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App, HostSettings, Offsite
from deploys.model.programs import TEMPLATES
from facts.state import State

RESTIC = "restic"
# ssh, for SFTP repositories (Debian's openssh-client; a minimal server may lack it).
SSH = "openssh-client"
# A password generated on the host when the inventory gives none: 48 random bytes, base64.
GENERATE_PASSWORD = "head -c 48 /dev/urandom | base64 -w0"


def offsite_of(app: App) -> Offsite | None:
    return app.backup.offsite if app.present and app.backup else None


def packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    kinds = {offsite.kind for app in apps if (offsite := offsite_of(app))}
    return Packages(others=(RESTIC, *([SSH] if "sftp" in kinds else []))) if kinds else Packages()


def sftp_settings(app: App, offsite: Offsite) -> dict | None:
    """How the tool reaches an SFTP repository: user, host, port, key and known hosts."""
    if offsite.kind != "sftp":
        return None
    rest = offsite.repository.split(":", 1)[1]
    if rest.startswith("//"):  # sftp://user@host[:port]//path
        login = rest[2:].split("/", 1)[0]
        user, address = login.split("@", 1)
        hostname, _, port = address.partition(":")
    else:  # sftp:user@host:/path
        user, address = rest.split("@", 1)
        hostname, port = address.split(":", 1)[0], ""
    return {"user": user, "host": hostname, "port": int(port) if port else None,
            "key": paths.offsite_file(app, "ssh_key") if offsite.sftp_key else None,
            "known_hosts": paths.offsite_file(app, "known_hosts"), "pinned": offsite.known_hosts is not None}


def settings_file(app: App, offsite: Offsite) -> str:
    s3 = ({"access_key_id": offsite.s3_access_key_id, "secret_access_key": offsite.s3_secret_access_key}
          if offsite.s3_access_key_id else None)
    return render("offsite/app.json.j2", app=app, offsite=offsite, sftp=sftp_settings(app, offsite), s3=s3)


def secret(app: App, kind: str, content: str, state: State) -> None:
    """One of the app's offsite files: root only, never shown in a diff."""
    path = paths.offsite_file(app, kind)
    ops.file(name=f"{app.name}: offsite {kind.replace('_', ' ')}", path=path, content=content, owner="root",
             group="root", mode="600", current=state.paths.get(path), secret=True)


def credentials(app: App, offsite: Offsite, state: State) -> None:
    """The password (the inventory's, or generated once and kept), the SSH key and host key."""
    password = paths.offsite_file(app, "password")
    if offsite.password is not None:
        secret(app, "password", offsite.password, state)
    else:
        # Generated once and never replaced: it is the only key to the backups already pushed.
        ops.command(name=f"{app.name}: offsite password generated on the host",
                    command=f"[ -s {password} ] || (umask 077 && {GENERATE_PASSWORD} >{password})",
                    needed=password not in state.paths, reason="")
    if offsite.sftp_key:
        secret(app, "ssh_key", offsite.sftp_key.read_text(), state)
    if offsite.known_hosts:
        secret(app, "known_hosts", render("offsite/known_hosts.j2", app=app, line=offsite.known_hosts), state)


@deploy("Offsite backups")
def offsite(apps: list[App], scheduled: list[App], state: State) -> None:
    """The tool, and for each of `apps` with an offsite repository its settings and credentials;
    the checks of `scheduled` (every app of the host deployed or being deployed)."""
    checked = [app for app in scheduled if offsite_of(app)]
    if not checked and paths.OFFSITE_TOOL not in state.paths:
        return
    ops.directory(name=f"Directory {paths.OFFSITE_CONFIG}", path=paths.OFFSITE_CONFIG, owner="root", group="root",
                  mode="700", current=state.paths.get(paths.OFFSITE_CONFIG))
    ops.files(name="Offsite tool, schedule of its checks", files=[
        ops.File(paths.OFFSITE_TOOL, (TEMPLATES / "offsite/djangohost-offsite.py").read_text(), mode="755"),
        ops.File(paths.OFFSITE_CRON, render("offsite/djangohost-offsite.cron.j2", tool=paths.OFFSITE_TOOL,
                                            log=paths.BACKUP_LOG, apps=checked)),
    ], current=state.paths)
    for app in host.loop(apps):
        settings = offsite_of(app)
        if settings is None:
            # No pushes any more; the password stays: it opens what was pushed.
            ops.absent(name=f"{app.name}: no offsite repository", path=paths.offsite_file(app, "json"),
                       current=state.paths.get(paths.offsite_file(app, "json")))
            continue
        secret(app, "json", settings_file(app, settings), state)
        credentials(app, settings, state)


COMPONENT = Component(
    "offsite", packages=packages, watched=paths.offsite_files,
    host_paths=(paths.OFFSITE_CONFIG, paths.OFFSITE_TOOL, paths.OFFSITE_CRON))
