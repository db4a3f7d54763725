"""The unix socket an app's Gunicorn listens on."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TypedDict

from pyinfra.api import FactBase

from facts.health import python

# The socket is in the app's run/, which the app's user writes: root connects to it through a
# descriptor of the path itself (O_PATH|O_NOFOLLOW), and only when it is a socket. A link there
# would lead root's connection where the app cannot go (another app's socket, a root-only one).
NO_LINK = r"""
import os, stat

def accepting(path, connect=accepting):
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        return e.strerror or str(e)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return "not a socket"
        return connect(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
"""
ACCEPTING = NO_LINK + "error = accepting(sys.argv[1]); print(answer(error))"


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
        return f"{stat_command(path)}; [ ! -e {shlex.quote(path)} ] || {python(ACCEPTING, path)} 2>&1"

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
