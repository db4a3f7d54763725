"""What the day-two commands share (deploys/logs.py, deploys/manage.py, scripts/djangohost-shell):
the one app `--data app=` names and the servers that run it, and the checks of the other `--data`
values. Each bad value stops the run with the field named, before anything runs on any host."""

from __future__ import annotations

import re
import shlex
import time
from typing import Any

from deploys.components import schedule
from deploys.engine import safe
from deploys.model import paths
from deploys.model.inventory import App, InventoryError, selection
from deploys.model.programs import program
from deploys.model.topology import Topology

#: templates/daytwo/djangohost-logs.py: the host runs it, the planner parses `since` with it.
logs_program = program("daytwo/djangohost-logs.py")
DEFAULT_LINES = 100
MAX_LINES = 10000
SWITCH = {"yes": True, "on": True, "true": True, "no": False, "off": False, "false": False}
# The labels of the logs that are not a process's (processes are named ^[a-z][a-z0-9_]*$: no clash).
WEB, ACCESS, ERROR = "web", "nginx-access", "nginx-error"


def problem(field: str, message: str) -> InventoryError:
    return InventoryError(f"--data {field}: {message}")


def one_app(topology: Topology, data: Any, command: str) -> str:
    """The name of the one app `--data app=` names (load_topology already refused unknown names)."""
    wanted = selection(data)
    if not wanted or len(wanted) != 1:
        raise problem("app", f"{command} needs one app: --data app=NAME")
    (name,) = wanted
    if not servers(topology, name):
        raise problem("app", f"{safe.printable(name)} is not deployed on any app server (state: absent)")
    return name


def servers(topology: Topology, name: str) -> list[str]:
    """The hosts that run the app `name`, in the inventory's order."""
    return [host for host, apps in topology.apps.items() if any(app.name == name and app.present for app in apps)]


def app_on(topology: Topology, host: str, name: str) -> App | None:
    return next((app for app in topology.apps.get(host, []) if app.name == name and app.present), None)


def primary(topology: Topology, name: str) -> str:
    """The app's primary server: where its schedule and unique processes run, and one-off commands."""
    return next(host for host in servers(topology, name) if (app := app_on(topology, host, name)) and app.primary)


def lines(value: Any) -> int:
    """`--data lines=`: a whole number from 1 to MAX_LINES (DEFAULT_LINES when not given)."""
    if value in (None, ""):
        return DEFAULT_LINES
    text = str(value).strip()
    # Digits only: str.isdigit() takes "²", which int() refuses.
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= MAX_LINES:
        raise problem("lines", f"{safe.printable(text)!r} must be a whole number from 1 to {MAX_LINES}")
    return int(text)


def since(value: Any) -> str | None:
    """`--data since=`: 30s, 10m, 2h, 1d or an ISO time, checked here and measured on the host's clock."""
    if value in (None, ""):
        return None
    try:
        logs_program.parse_since(str(value), time.time())
    except ValueError as error:
        raise problem("since", safe.printable(str(error))) from None
    return str(value)


def switch(field: str, value: Any) -> bool:
    """A yes/no `--data` value (no when not given)."""
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    if str(value).lower() not in SWITCH:
        raise problem(field, f"{safe.printable(str(value))!r}: say yes or no")
    return SWITCH[str(value).lower()]


def app_logs(app: App) -> list[tuple[str, str]]:
    """Every log of the app on this host as (label, path): its Gunicorn (web), each process, each
    job, its Nginx site's access and error logs. Where each lives is in deploys.model.paths."""
    return [(WEB, paths.process_log(app, "gunicorn")),
            *((process.name, paths.process_log(app, process.name)) for process in app.processes),
            *((f"job-{job.name}", paths.job_log(app, job.name)) for job in schedule.jobs(app)),
            (ACCESS, paths.nginx_log(app, "access")), (ERROR, paths.nginx_log(app, "error"))]


def log_kinds(app: App) -> dict[str, set[str]]:
    """What `--data process=` may name, and the labels of the logs each keeps: a log's label, or
    `nginx` (access and error), `jobs` (every job), `processes` (every process)."""
    labels = [label for label, _ in app_logs(app)]
    kinds = {label: {label} for label in labels}
    kinds["nginx"] = {ACCESS, ERROR}
    kinds["jobs"] = {label for label in labels if label.startswith("job-")}
    kinds["processes"] = {process.name for process in app.processes}
    return kinds


def chosen_logs(everywhere: list[App], process: Any) -> set[str] | None:
    """The labels `--data process=` keeps (None: every log), checked against the app on every one of
    its servers (a unique process or a job runs on the primary only)."""
    if process in (None, ""):
        return None
    known: dict[str, set[str]] = {}
    for app in everywhere:
        for kind, labels in log_kinds(app).items():
            known.setdefault(kind, set()).update(labels)
    if str(process) not in known:
        raise problem("process", f"{safe.printable(str(process))!r} is not a log of {everywhere[0].name} "
                                 f"(logs: {', '.join(sorted(known))})")
    return known[str(process)]


def command_words(value: Any) -> list[str]:
    """`--data command=`: a management command and its arguments, split as a shell would split them
    (quotes kept), or a JSON list of words; never given to a shell."""
    if isinstance(value, list) and value and all(isinstance(word, str) for word in value):
        return value
    try:
        words = shlex.split(str(value)) if isinstance(value, str) else []
    except ValueError as error:
        raise problem("command", f"{safe.printable(str(value))!r} cannot be split into words: {error}") from None
    if not words:
        raise problem("command", 'name a management command: --data command="migrate --plan"')
    return words
