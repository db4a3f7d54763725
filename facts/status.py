"""Everything the status view shows about a host, in one round trip."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypedDict

from pyinfra.api import FactBase

from facts.backups import BackupList, Backups, list_command
from facts.gunicorn import GunicornSocket, Socket, stat_command
from facts.health import AppHealth, health
from facts.history import History
from facts.jobs import JobRun, JobRuns
from facts.nginx import Nginx, NginxState
from facts.supervisor import Program, SupervisorPrograms

MARK = "--- djangohost section"

class AppStatus(TypedDict):
    program: Program | None
    processes: dict[str, Program]  # its other programs: <app>-redis, <app>-<process>
    socket: Socket
    health: dict[str, int]
    backups: BackupList
    jobs: dict[str, JobRun]
    offsite: dict  # its last push and check off the host: {"push": {"at", "ok", "error"}, "check": ...}


class HostStatus(TypedDict):
    nginx: NginxState
    apps: dict[str, AppStatus]
    history: dict[str, list[dict[str, Any]]]  # each app's last entries (History)


class Status(FactBase[HostStatus]):
    """
    SupervisorPrograms, Nginx, and for each app its GunicornSocket, AppHealth, Backups and JobRuns, gathered by one
    script whose sections each fact parses as it would its own output.

    + apps: (name, socket path, domains, health path) of each app
    + backup_tool: the host's djangohost-backup
    + jobs: the directory of each app's job records
    + history_tool, last: the host's djangohost-history, and how many of each app's last entries

    .. code:: python

        {"nginx": {"installed": True, "valid": True, "error": None, "sites": {...}},
         "apps": {"hello": {"program": {"state": "RUNNING", "pid": 2426, "uptime": 100, ...},
                            "processes": {"hello-worker": {"state": "RUNNING", "pid": 2431, ...}},
                            "socket": {"exists": True, "accepting": True, ...},
                            "health": {"hello.test": 200},
                            "backups": {"now": 1795431000, "backups": [...]},
                            "jobs": {"clearsessions": {"ended": 1795431000, "status": 0}}}}}
    """

    def command(self, apps: list[tuple[str, str, list[str], str]], backup_tool: str,  # type: ignore[override]
                jobs: str, history_tool: str = "", last: int = 0, offsite: str = "") -> str:
        """backup_tool: the host's djangohost-backup; jobs: the directory of each app's job records;
        offsite: the directory of each app's record of its last push and check (djangohost-offsite)."""
        names = [name for name, *_ in apps]
        sections = [("supervisor", SupervisorPrograms().command()), ("nginx", Nginx().command()),
                    ("backups", list_command(names, backup_tool))]
        if history_tool:
            sections.append(("history", History().command(names, history_tool, last)))
        if offsite:
            sections.append(("offsite", f"cat {offsite}/*.json 2>/dev/null; true"))
        for name, socket, _, _ in apps:
            sections.append((f"socket {name}", stat_command(socket)))
            sections.append((f"jobs {name}", JobRuns().command(f"{jobs}/{name}")))
        marked = [f"echo '{MARK} {label}'\n( {command}\n)" for label, command in sections]
        return "\n".join([*marked, f"{health('status', json.dumps(apps))} 2>/dev/null"])

    def process(self, output: Iterable[str]) -> HostStatus:  # type: ignore[override]
        sections: dict[str, list[str]] = {}
        current: list[str] = []
        for line in output:
            if line.startswith(MARK):
                current = sections.setdefault(line[len(MARK):].strip(), [])
            else:
                current.append(line)
        programs = SupervisorPrograms().process(sections.get("supervisor", []))
        backups = Backups().process(sections.get("backups", []))
        offsite = {record.get("app"): record for line in sections.get("offsite", []) if line.startswith("{")
                   for record in [json.loads(line)]}
        status = HostStatus(nginx=Nginx().process(sections.get("nginx", [])), apps={},
                            history=History().process(sections.get("history", [])))
        for label, lines in sections.items():
            kind, _, name = label.partition(" ")
            if kind == "socket":
                status["apps"][name] = AppStatus(
                    program=programs.get(name),
                    processes={program: state for program, state in programs.items()
                               if program.startswith(f"{name}-")},
                    socket=GunicornSocket().process([*lines, *sections.get(f"accept {name}", [])]),
                    health=AppHealth().process(sections.get(f"health {name}", [])),
                    backups=BackupList(now=backups["now"],
                                       backups=[backup for backup in backups["backups"] if backup.get("app") == name]),
                    jobs=JobRuns().process(sections.get(f"jobs {name}", [])),
                    offsite=offsite.get(name, {}),
                )
        return status

    @staticmethod
    def default() -> HostStatus:
        return HostStatus(nginx=Nginx.default(), apps={}, history={})
