"""The status of every app on every host, read in one round trip per host; changes nothing.

    pyinfra INVENTORY deploys/status.py
    pyinfra INVENTORY deploys/status.py --data app=hello
"""

from __future__ import annotations

import click
from pyinfra import host, inventory

import facts
from deploys.components import broker, history, registry, schedule
from deploys.components.health.contract import HealthPart
from deploys.engine import safe
from deploys.model import paths
from deploys.model.inventory import App, selected
from deploys.model.topology import ROLES, Topology, topology_of
from facts.status import AppStatus, HostStatus, Status


def uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def ago(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    if days:
        return f"{days}d {rest // 3600}h"
    return f"{rest // 3600}h {rest % 3600 // 60}m" if rest >= 3600 else f"{rest // 60}m"


def backup(app: App, status: AppStatus) -> str:
    """The newest good backup and its age; WARNING when there is none within the schedule."""
    listed = status["backups"]
    scheduled = app.backup is not None and app.backup.cron is not None
    if not listed["backups"]:
        return "backup NONE (WARNING: no good backup yet)" if scheduled else "backup none (not scheduled)"
    newest = listed["backups"][-1]
    age = max(0, listed["now"] - newest["created"])
    # An hour of grace: a backup takes time, and cron starts it on the minute.
    late = scheduled and app.backup is not None and age > app.backup.period + 3600
    return (f"backup {newest['name']} ({ago(age)} ago{'; WARNING: older than its schedule' if late else ''})"
            + offsite(app, status))


def offsite(app: App, status: AppStatus) -> str:
    """The last push and check off the host, when the app has a repository; WARNING when one failed."""
    if not (app.backup and app.backup.offsite):
        return ""
    now, records = status["backups"]["now"], status["offsite"]
    told = []
    for command, done in (("pushed", records.get("push")), ("checked", records.get("check"))):
        if done and not done["ok"]:
            told.append(f"{command[:-2]} FAILED {ago(max(0, now - done['at']))} ago (WARNING: {done['error']})")
        elif done:
            told.append(f"{command} {ago(max(0, now - done['at']))} ago")
    return f"; offsite {', '.join(told) or 'not pushed yet'}"


def app_line(app: App, status: AppStatus | None) -> str:
    if status is None:
        return f"  {app.name:<16} not deployed"
    program, socket = status["program"], status["socket"]
    state = program["state"] if program else "NO PROGRAM"
    pid = program["pid"] if program and program["pid"] else "-"
    sock = "accepting" if socket["accepting"] else f"not accepting ({socket['error']})"
    http = " ".join(f"{domain}={code or 'none'}" for domain, code in status["health"].items())
    up = uptime(program["uptime"]) if program else "-"
    return f"  {app.name:<16} {state:<10} pid {pid!s:<7} up {up:<10} socket {sock:<10} {http}  {backup(app, status)}"


def process_lines(app: App, status: AppStatus) -> list[str]:
    """A line for each of the app's other programs (its broker, its processes), then for each job."""
    lines = []
    for name in [*([app.program("redis")] if broker.maxmemory(app) else []), *app.code_programs[1:]]:
        program = status["processes"].get(name)
        state = program["state"] if program else "NO PROGRAM"
        pid = program["pid"] if program and program["pid"] else "-"
        lines.append(f"    {name:<22} {state:<10} pid {pid!s:<7} up {uptime(program['uptime'] if program else None)}")
    now = status["backups"]["now"]
    for job in schedule.jobs(app):
        run = status["jobs"].get(job.name)
        last = ("never run" if run is None else
                f"last run {ago(max(0, now - run['ended']))} ago, exit {run['status']}"
                + ("" if run["status"] == 0 else " (WARNING: failed)"))
        lines.append(f"    job {job.name:<18} {job.cron:<16} {last}")
    return lines


def role_lines(topology: Topology) -> list[str]:
    """The host's roles, the databases it keeps for app servers and the apps it balances."""
    lines = [f"  roles: {', '.join(role for role in ROLES if role in topology.roles[host.name])}"]
    lines += [f"  database {served.app.name:<16} for {', '.join(served.clients)}"
              for served in topology.served.get(host.name, [])]
    lines += [f"  balances {balanced.app.name:<16} over {', '.join(balanced.servers)}"
              for balanced in topology.balanced.get(host.name, [])]
    return lines


def report(apps: list[App], status: HostStatus, roles: list[str]) -> str:
    """What the status view prints for the host: every line escaped, for what the host says (a
    socket's error, Nginx's, a program's) may hold text an app controls."""
    nginx = status["nginx"]
    valid = "valid" if nginx["valid"] else f"INVALID: {nginx['error']}"
    lines = [f"{host.name}: nginx configuration {valid}", *roles]
    for app in apps:
        app_status = status["apps"].get(app.name)
        lines.append(app_line(app, app_status))
        lines += process_lines(app, app_status) if app_status else []
        # The last runs of each app (deploys/history.py shows them all).
        lines += [f"    history {history.line(entry)}" for entry in status["history"].get(app.name, [])]
    return "\n".join(safe.printable(line, keep="\t") for line in "\n".join(lines).split("\n"))


topology = topology_of(inventory, registry.CONTRACT)
apps = [app for app in selected(topology.apps[host.name], host.data) if app.present]
if topology.apps[host.name]:
    status = facts.read(
        host, Status, apps=[(app.name, app.socket, list(app.checked_origins), app.part(HealthPart).health_path)
                     for app in apps],
        backup_tool=paths.BACKUP_TOOL, jobs=paths.JOBS, history_tool=history.TOOL, last=history.RECENT,
        offsite=paths.OFFSITE_STATUS,
    )
    click.echo(report(apps, status, role_lines(topology)))
else:  # a load balancer or a database server only
    click.echo("\n".join([f"{host.name}:", *role_lines(topology)]))
