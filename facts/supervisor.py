"""Supervisor's view of its programs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypedDict

from pyinfra.api import FactBase

# `supervisorctl status` lines: name, state, then a description such as "pid 12, uptime 0:01:40".
STATUS_LINE = re.compile(r"^(?P<name>\S+)\s+(?P<state>[A-Z]+)\s*(?P<description>.*)$")
STATES = {"STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "UNKNOWN"}
RUNNING_DESCRIPTION = re.compile(r"pid (?P<pid>\d+), uptime (?:(?P<days>\d+) days?, )?(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)")


class Program(TypedDict):
    state: str
    pid: int | None
    uptime: int | None  # seconds
    description: str


class SupervisorPrograms(FactBase[dict[str, Program]]):
    """
    Supervisor's programs by name with their state, pid and uptime in seconds (pid and uptime
    are None unless the program runs). Empty when Supervisor is not installed or not running.

    .. code:: python

        {
            "hello": {"state": "RUNNING", "pid": 2426, "uptime": 100,
                      "description": "pid 2426, uptime 0:01:40"},
            "broken": {"state": "FATAL", "pid": None, "uptime": None,
                       "description": "Exited too quickly (process log may have details)"},
        }
    """

    def command(self) -> str:
        # supervisorctl exits non-zero when a program is not running; the output says it all.
        return "command -v supervisorctl >/dev/null && supervisorctl status 2>&1; true"

    def process(self, output: Iterable[str]) -> dict[str, Program]:  # type: ignore[override]
        programs: dict[str, Program] = {}
        for line in output:
            match = STATUS_LINE.match(line.strip())
            if not match or match["state"] not in STATES:
                continue
            description = match["description"].strip()
            running = RUNNING_DESCRIPTION.search(description)
            pid = uptime = None
            if running:
                pid = int(running["pid"])
                uptime = (int(running["days"] or 0) * 86400 + int(running["h"]) * 3600
                          + int(running["m"]) * 60 + int(running["s"]))
            programs[match["name"]] = Program(state=match["state"], pid=pid, uptime=uptime,
                                              description=description)
        return programs

    @staticmethod
    def default() -> dict[str, Program]:
        return {}
