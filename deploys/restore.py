"""Restore one app's database (and its media, if asked) from a backup, then run the health gate.

    pyinfra INVENTORY deploys/restore.py --data app=shop                        # its newest backup
    pyinfra INVENTORY deploys/restore.py --data app=shop --data backup=20261123T031700-scheduled
    pyinfra INVENTORY deploys/restore.py --data app=shop --data backup=backups/web1/shop/20261123T031700-scheduled
    pyinfra INVENTORY deploys/restore.py --data app=shop --data media=yes       # the media too
    pyinfra INVENTORY deploys/restore.py --data app=shop --data backup=PULLED --data identity=key.txt
    pyinfra INVENTORY deploys/restore.py --data app=shop --data from=remote     # newest in its offsite repository
    pyinfra INVENTORY deploys/restore.py --data app=shop --data from=remote --data backup=20261123T031700-scheduled

A backup given as a path is one pulled to this machine (deploys/backup.py): it is shipped to the
host first, so a new server, deployed from the inventory, gets the data of the one it replaces.
`from=remote` fetches it from the app's offsite repository (restic) first, checked against its
manifest, with the media unless media=no: the disaster case needs nothing but the inventory.
One pulled encrypted is decrypted here first, with the age identity (private key) `identity`
names, which never leaves this machine.
The backup is restored into a new database; only when that succeeded are the app's processes
stopped, the databases swapped and the processes started (the output says for how long they
were stopped). What the restore replaced is kept until the next good backup.
"""

import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

from pyinfra import host, inventory

from deploys.components import history, registry
from deploys.components.health import gate_command
from deploys.engine import lock, ops
from deploys.model import paths
from deploys.model.inventory import App, InventoryError, selection
from deploys.model.programs import backup_tool
from deploys.model.topology import topology_of
from facts.backups import Backups

all_apps = topology_of(inventory, registry.CONTRACT).apps[host.name]
wanted_apps = selection(host.data)
if not wanted_apps or len(wanted_apps) != 1:
    raise InventoryError("restore: name one app with --data app=NAME")
wanted = str(host.data.get("backup") or "")
media = str(host.data.get("media", "")).lower() in ("1", "yes", "true")
remote = host.data.get("from")
if remote not in (None, "remote"):
    raise InventoryError(f"host {host.name}: restore: from={remote!r} must be remote (or left out)")


def from_remote(app: App, where: str) -> str:
    """Shell: fetch the backup `wanted` (or the newest) from the app's offsite repository, then
    restore it as a local one is; what was fetched stays among the host's backups."""
    if not (app.backup and app.backup.offsite):
        raise InventoryError(f"host {host.name}, app {app.name}, field backup: from=remote needs an offsite "
                             "repository (backup offsite repository)")
    if wanted and not backup_tool.NAME_RE.fullmatch(wanted):
        raise InventoryError(f"{where}: {wanted!r} is not the name of a backup such as 20261123T031700-scheduled")
    with_media = media if host.data.get("media") is not None else app.backup.media
    return (f"name=$({paths.OFFSITE_TOOL} fetch {app.name} {wanted}) && chmod 700 {paths.BACKUPS}/{app.name} && "
            f"{paths.BACKUP_TOOL} restore {app.name} \"$name\"{' --media' if with_media else ''}")


def packed(directory: Path, where: str) -> bytes:
    """The files of a pulled backup as a gzipped tar, decrypted if they are, readable by root
    only once unpacked."""
    encrypted = sorted(directory.glob("*.age"))
    identity = host.data.get("identity")
    if encrypted and not identity:
        raise InventoryError(f"{where}: {directory} is encrypted; give the age identity that opens it "
                             "(--data identity=KEYFILE)")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar, tempfile.TemporaryDirectory() as plain:
        for file in encrypted:
            decrypted = Path(plain, file.stem)
            done = subprocess.run(["age", "-d", "-i", str(identity), "-o", str(decrypted), str(file)],
                                  capture_output=True, text=True)
            if done.returncode:
                raise InventoryError(f"{where}: age cannot decrypt {file}: {done.stderr.strip()}")
        for file in [*(path for path in directory.iterdir() if path.suffix != ".age"), *Path(plain).iterdir()]:
            info = tar.gettarinfo(str(file), arcname=file.name)
            info.mode = 0o600
            with file.open("rb") as content:
                tar.addfile(info, content)
    return data.getvalue()


apps = [app for app in all_apps if app.name in wanted_apps and app.present]
with lock.held(apps):
    for app in host.loop(apps):
        where = f"host {host.name}, app {app.name}, field backup"
        if remote:
            fetch_and_restore = from_remote(app, where)
            restored = ops.command(name=f"{app.name}: restore {wanted or 'the newest backup'} from its offsite "
                                        "repository", command=fetch_and_restore, needed=True, reason="")
            ops.tell(name=f"{app.name}: what the restore did", op=restored)
            ops.command(name=f"{app.name}: health gate", command=gate_command(app), needed=True, reason="")
            continue
        names = [backup["name"] for backup in host.get_fact(Backups, app=app.name, tool=paths.BACKUP_TOOL)["backups"]]
        if "/" in wanted:  # pulled to this machine
            local = Path(wanted)
            manifest = local / backup_tool.MANIFEST
            if not manifest.is_file():
                raise InventoryError(f"{where}: {local} is not a backup (no {backup_tool.MANIFEST})")
            owner = json.loads(manifest.read_text()).get("app")
            if owner != app.name or not backup_tool.NAME_RE.fullmatch(local.name):
                raise InventoryError(f"{where}: {local} is a backup of app {owner}, not of {app.name}")
            name = local.name
            shipped = name in names  # then it is not opened here: no identity is needed for it
            ops.unpack(name=f"{app.name}: backup {name} shipped", path=f"{paths.BACKUPS}/{app.name}/{name}",
                       archive=b"" if shipped else packed(local, where), needed=not shipped)
        elif wanted:
            if wanted not in names:
                raise InventoryError(f"{where}: no backup {wanted} (backups: {', '.join(names) or 'none'})")
            name = wanted
        elif names:
            name = names[-1]
        else:
            raise InventoryError(f"{where}: {app.name} has no backup on this host")
        restored = ops.command(name=f"{app.name}: restore {name}{' with media' if media else ''}",
                    command=(f"chmod 700 {paths.BACKUPS}/{app.name} && "
                             f"{paths.BACKUP_TOOL} restore {app.name} {name}{' --media' if media else ''}"),
                    needed=True, reason="")
        ops.tell(name=f"{app.name}: what the restore did", op=restored)
        ops.command(name=f"{app.name}: health gate", command=gate_command(app), needed=True, reason="")
        history.restored(app, name, media)
