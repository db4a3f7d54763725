"""The host's alerts (djangohost_notify): failed or refused deploys, health gates that rolled back,
failed jobs and backups, late backups, a Gunicorn Supervisor restarts too often.

They are sent from the host, by templates/notify/djangohost-notify.py, so that what fails while
nobody runs pyinfra (a job at night, a backup, a crashing Gunicorn) is told too: the history
program tells it of a deploy's failure as it records it, a job's script and the backups' cron
line of theirs, and cron runs it every minute to retry what could not be delivered (its spool,
root's alone) and to look for restarts and late backups. Its settings hold the webhook's URL,
which may hold a token: a file root alone reads, never shown in a diff.
"""

from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import deploy

from deploys.components import Component, Packages
from deploys.engine import ops
from deploys.engine.templates import render
from deploys.model.inventory import App, HostSettings
from deploys.model.programs import TEMPLATES
from facts.state import State

TOOL = "/usr/local/sbin/djangohost-notify"
HOME = "/var/lib/djangohost/notify"
CONFIG = f"{HOME}/config.json"
LOG = f"{HOME}/cron.log"
CRON = "/etc/cron.d/djangohost-notify"


def config(apps: list[App], settings: HostSettings, host_name: str) -> str:
    """The program's settings: where alerts go, and what it watches of each app."""
    notify = settings.notify
    watched = [{"name": app.name, "backup_period": app.backup.period if app.backup and app.backup.cron else None}
               for app in apps if app.present]
    return json.dumps({"host": host_name, "webhook": notify.webhook, "email": notify.email,
                       "restarts": notify.restarts, "apps": watched}, indent=1, sort_keys=True) + "\n"


@deploy("Alerts")
def alerts(apps: list[App], settings: HostSettings, state: State) -> None:
    """The notifier, its settings (secret: the webhook's URL), its spool and its cron line, for
    every app of the host (`apps`), whichever this run deploys."""
    ops.directory(name=f"Directory {HOME}", path=HOME, owner="root", group="root", mode="700",
                  current=state.paths.get(HOME))
    ops.file(name="Alert settings", path=CONFIG, content=config(apps, settings, host.name), owner="root",
             group="root", mode="600", current=state.paths.get(CONFIG), secret=True)
    ops.files(name="Alert program and schedule", files=[
        ops.File(TOOL, (TEMPLATES / "notify/djangohost-notify.py").read_text(), mode="755"),
        ops.File(CRON, render("notify/djangohost-notify.cron.j2", tool=TOOL, log=LOG)),
    ], current=state.paths)


COMPONENT = Component("notify", packages=lambda apps, settings: Packages(others=("cron",)),
                      host_paths=(TOOL, HOME, CONFIG, CRON))
