"""Switch apps back to their previous release, or to a named one, gracefully; nothing else changes.

    pyinfra INVENTORY deploys/rollback.py --data app=hello
    pyinfra INVENTORY deploys/rollback.py --data app=hello --data release=20261122T101500-3f2a9c1d2e4f

The same command run twice steps back once: the second run finds the app where the first put it
and changes nothing (a named release still goes anywhere). The database is left as it is: a
rollback does not reverse migrations (see the README); when the release rolled back from migrated
the database, the output names the dump taken before it, which deploys/restore.py restores.
"""

from pyinfra import host, inventory, logger

from deploys.components import history, registry
from deploys.components.health import gate_command
from deploys.components.supervisor import reload_all
from deploys.engine import lock, ops
from deploys.model import paths
from deploys.model.inventory import InventoryError, selected
from deploys.model.topology import topology_of
from facts.backups import Backups
from facts.releases import AppReleases

all_apps = topology_of(inventory, registry.CONTRACT).apps[host.name]
if host.data.get("app") in (None, ""):
    raise InventoryError("rollback: name the apps with --data app=NAME[,NAME]")
wanted = host.data.get("release")

apps = [app for app in selected(all_apps, host.data) if app.present]
with lock.held(apps):
    for app in host.loop(apps):
        recorded = paths.stamp("rollback", app)
        found = host.get_fact(AppReleases, home=app.home, rollback=recorded)
        # Only releases that passed their candidate check know their virtualenv.
        checked = [release for release, venv in found["releases"].items() if venv]
        if wanted:
            if wanted not in checked:
                raise InventoryError(f"host {host.name}, app {app.name}: no release {wanted} "
                                     f"(releases: {', '.join(checked) or 'none'})")
            target = wanted
        elif found["rolled_back"] and found["rolled_back"][1] == found["live"]:
            # The same command again: the app stays where the first run put it.
            host.log(f"{app.name} is already rolled back from {found['rolled_back'][0]} to {found['live']}; "
                     "name a release to go further back (--data release=...)", logger.warning)
            continue
        else:
            older = [release for release in checked if found["live"] and release < found["live"]]
            if not older:
                raise InventoryError(f"host {host.name}, app {app.name}: no release older than {found['live']}")
            target = older[-1]
        venv_key = found["releases"][target]
        before = [backup["name"] for backup in host.get_fact(Backups, app=app.name, tool=paths.BACKUP_TOOL)["backups"]
                  if backup["name"].endswith(f"-before-{found['live']}")]
        if before:
            host.log(f"{app.name}: release {found['live']} migrated the database, which the rollback leaves as it "
                     f"is; the dump taken before it is {before[-1]}. To restore it: pyinfra INVENTORY "
                     f"deploys/restore.py --data app={app.name} --data backup={before[-1]}", logger.warning)

        # Its static files first: a file that changed since (Django's default storage names it by its
        # path alone) is served as that release had it.
        ops.command(name=f"{app.name}: static files of {target}",
                    command=f"{paths.release_script(app)} {target} {venv_key} static", needed=True, reason="")
        switched = [
            ops.link(name=f"{app.name}: live release", path=paths.current(app), target=f"releases/{target}",
                     current=ops.link_state(f"releases/{found['live']}")),
            ops.link(name=f"{app.name}: live virtualenv", path=paths.venv(app), target=f"venvs/{venv_key}",
                     current=ops.link_state(f"venvs/{found['live_venv']}")),
        ]
        ops.react(f"{app.name}: reload gunicorn{' and restart its processes' if app.processes else ''}",
                  reload_all(app), [], switched)
        ops.react(f"{app.name}: health gate", gate_command(app), [], switched)
        ops.react(f"{app.name}: rollback recorded", f"echo {found['live']} {target} > {recorded}", [], switched)
        history.rolled_back(app, switched, found["live"], target)
