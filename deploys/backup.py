"""Back up apps now and, if asked, pull their backups to this machine; nothing else changes.

    pyinfra INVENTORY deploys/backup.py --data app=shop
    pyinfra INVENTORY deploys/backup.py --data app=shop --data pull=backups/

An app with an offsite repository (backup "offsite") pushes its good backups there with restic
right after (deploys.components.offsite). `pull=DIR` copies every
backup of the apps that DIR lacks to DIR/<host>/<app>/<name>/ (readable by you only: 0700 and 0600;
`/` in a host name becomes `_`), checks each file against the
checksum taken on the host, and prunes DIR by the app's retention, as the host does.
"""

from datetime import UTC, datetime
from pathlib import Path

from pyinfra import host, inventory

from deploys.components import backups, registry
from deploys.engine import lock, ops
from deploys.model import paths
from deploys.model.inventory import selected
from deploys.model.topology import topology_of
from facts.backups import Backups

all_apps = topology_of(inventory, registry.CONTRACT).apps[host.name]
name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-manual"  # known before it is taken, to be pulled
pull = host.data.get("pull")

apps = [app for app in selected(all_apps, host.data) if app.present]
with lock.held(apps):
    for app in host.loop(apps):
        ops.command(name=f"{app.name}: backup {name}", command=f"{paths.BACKUP_TOOL} take {app.name} --name {name}",
                    needed=True, reason="")
        if app.backup and app.backup.offsite:
            pushed = ops.command(name=f"{app.name}: push to {app.backup.offsite.repository}",
                                 command=f"{paths.OFFSITE_TOOL} push {app.name}", needed=True, reason="")
            ops.tell(name=f"{app.name}: what the push did", op=pushed)
        if pull:
            listed = host.get_fact(Backups, app=app.name, tool=paths.BACKUP_TOOL)["backups"]
            backups.pull(app=app, into=Path(str(pull)) / host.name.replace("/", "_") / app.name,
                         backups={**{backup["name"]: [*backup["files"], "manifest.json"] for backup in listed},
                                  name: backups.files(app)})
