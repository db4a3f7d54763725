"""The unix socket an app's Gunicorn listens on."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TypedDict

from pyinfra.api import FactBase

from facts.health import health


def stat_command(path: str) -> str:
    """Shell: the socket's kind, owner, group and mode, or `missing`."""
    quoted = shlex.quote(path)
    return f"if [ -e {quoted} ]; then stat --printf '%F\\t%U\\t%G\\t%a\\n' {quoted}; else echo missing; fi"


class Socket(TypedDict):
    exists: bool
    is_socket: bool
    owner: str | None
    group: str | None
    mode: str | None
    accepting: bool
    error: str | None


class GunicornSocket(FactBase[Socket]):
    """
    An app's Gunicorn socket: whether it exists and is a socket, its owner, group and mode, and
    whether it accepts a connection right now (and why not, when it does not).

    .. code:: python

        {"exists": True, "is_socket": True, "owner": "hello", "group": "hello", "mode": "777",
         "accepting": True, "error": None}
    """

    def command(self, path: str) -> str:  # type: ignore[override]
        return f"{stat_command(path)}; [ ! -e {shlex.quote(path)} ] || {health('accepting', path)} 2>&1"

    def process(self, output: Iterable[str]) -> Socket:  # type: ignore[override]
        lines = list(output)
        if not lines or lines[0] == "missing":
            return self.default()
        kind, owner, group, mode = lines[0].split("\t")
        answer = lines[1] if len(lines) > 1 else "refusing no answer"
        accepting = answer == "accepting"
        return Socket(exists=True, is_socket=kind == "socket", owner=owner, group=group, mode=mode,
                      accepting=accepting, error=None if accepting else answer.removeprefix("refusing "))

    @staticmethod
    def default() -> Socket:
        return Socket(exists=False, is_socket=False, owner=None, group=None, mode=None,
                      accepting=False, error="no such file")
