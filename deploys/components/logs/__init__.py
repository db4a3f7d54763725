"""Every log djangohost creates is rotated: Supervisor rotates the logs of the apps' processes
itself (deploys.components.supervisor), at the size the host's `djangohost_logs` gives; logrotate, from
cron, the Nginx logs of every app (Nginx reopens them) and the logs of their jobs."""

from __future__ import annotations

from pyinfra.api import deploy

from deploys.components import Component, Packages
from deploys.engine import ops
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import HostSettings
from deploys.model.schema import LogsEntry
from facts.state import State

PACKAGES = ["logrotate"]
# How each reader spells a size of 10 megabytes, kilobytes, gigabytes.
UNITS = {"supervisor": {"k": "KB", "m": "MB", "g": "GB"}, "logrotate": {"k": "k", "m": "M", "g": "G"}}


def size(logs: LogsEntry, reader: str) -> str:
    """The size a log is rotated at, as `reader` (supervisor or logrotate) reads it."""
    number, unit = logs.size.rstrip("kKmMgG"), logs.size[-1].lower()
    return number + UNITS[reader][unit] if unit in "kmg" else number


@deploy("Log rotation")
def rotation(settings: HostSettings, state: State) -> None:
    """logrotate's configuration for the apps' logs, and the cron line that runs it."""
    ops.files(name="logrotate configuration and schedule", files=[
        ops.File(paths.LOGROTATE_CONF, render("logs/logrotate.conf.j2", root=settings.root, nginx_logs=paths.NGINX_LOGS,
                                              keep=settings.logs.keep, size=size(settings.logs, "logrotate"))),
        ops.File(paths.LOGROTATE_CRON, render("logs/djangohost-logrotate.cron.j2", conf=paths.LOGROTATE_CONF,
                                              state=paths.LOGROTATE_STATE)),
    ], current=state.paths)


COMPONENT = Component("logs", packages=lambda apps, settings: Packages(others=tuple(PACKAGES)),
                      host_paths=(paths.LOGROTATE_CONF, paths.LOGROTATE_CRON))
