"""The last lines of an app's logs, merged by time, as root reads them and escaped on the host."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from pyinfra.api import FactBase

# Run on the host with python3 (there for the virtualenvs); see its docstring.
PROGRAM = (Path(__file__).resolve().parent.parent / "templates" / "daytwo" / "djangohost-logs.py").read_text()


class LogLine(NamedTuple):
    time: float  # seconds since the epoch, on the host's clock
    log: str  # the log's label: web, a process, job-<name>, nginx-access, nginx-error
    text: str  # escaped on the host: no control character left


def logs_argv(safe_tool: str, logs: list[tuple[str, str]], lines: int, since: str | None = None,
              follow: bool = False) -> list[str]:
    """The logs program and its arguments, as words."""
    spec = {"logs": logs, "lines": lines, "since": since, "follow": follow}
    return ["python3", "-c", PROGRAM, "--safe", safe_tool, json.dumps(spec)]


def logs_command(safe_tool: str, logs: list[tuple[str, str]], lines: int, since: str | None = None,
                 follow: bool = False) -> str:
    """Shell: the logs program with its arguments, every one quoted (none reaches a shell as code)."""
    return shlex.join(logs_argv(safe_tool, logs, lines, since, follow))


class AppLogs(FactBase[list[LogLine]]):
    """
    The last `lines` lines of `logs` together, oldest first, those of `since` or later only.

    + logs: (label, path) of each log; from the command line, paths separated by commas
    + lines: how many lines
    + since: 30s, 10m, 2h, 1d or an ISO time
    + safe_tool: the host's djangohost-safe, whose escaping the program uses

    .. code:: python

        [LogLine(time=1796700000.0, log="nginx-access", text='127.0.0.1 - - [08/Dec/2026:01:20:00 +0000] "GET / ...'),
         LogLine(time=1796700000.0, log="web", text="something the app printed \\\\x1b[31m")]
    """

    def command(self, logs: list[tuple[str, str]] | str, lines: int = 100,  # type: ignore[override]
                since: str | None = None, safe_tool: str = "/usr/local/sbin/djangohost-safe") -> str:
        if isinstance(logs, str):
            logs = [(Path(path).name, path) for path in logs.split(",")]
        return logs_command(safe_tool, logs, int(lines), since)

    def process(self, output: Iterable[str]) -> list[LogLine]:  # type: ignore[override]
        found = []
        for line in output:
            when, _, rest = line.partition("\t")
            log, _, text = rest.partition("\t")
            try:
                found.append(LogLine(float(when), log, text))
            except ValueError:
                continue  # not a line of the program's
        return found

    @staticmethod
    def default() -> list[LogLine]:
        return []
