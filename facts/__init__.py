"""djangohost's facts, and `read`: a fact whose program grows with the apps, sent on stdin."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from pyinfra.api import FactBase, Host

T = TypeVar("T")

#: The command line of a fact read with `read`: the shell reads its whole program from stdin, then
#: runs it with /dev/null as stdin. `sh -s` would read it as it goes, from a pipe that the commands
#: it runs inherit: one run as another user (psql as postgres) could write lines into it that root's
#: shell then runs.
PIPED = 'eval "$(cat)" </dev/null'


def read(target: Host, fact: type[FactBase[T]], **arguments: Any) -> T:
    """`fact` on `target`, its program (what its command() returns) sent on the standard input of
    PIPED. A host with many apps gets a program of hundreds of kilobytes (HostState: about 1.5 KB
    an app), and the command line cannot carry it: over SSH the whole command is one argument of
    the login shell, which the kernel caps at 128 KiB (MAX_ARG_STRLEN), near 80 apps."""
    piped = _PIPED.get(fact) or _PIPED.setdefault(fact, _piped(fact))
    return target.get_fact(piped, _stdin=fact().command(**arguments), **arguments)


_PIPED: dict[type, type] = {}


def _piped(fact: type[FactBase[T]]) -> type[FactBase[T]]:
    """`fact` with PIPED as its command; its command() still runs, for what process() keeps of
    the arguments (HostState's asked paths)."""

    def command(self: FactBase[T], **arguments: Any) -> str:
        fact.command(self, **arguments)
        return PIPED

    # pyinfra binds a fact's arguments by the signature of its command (inspect.getcallargs).
    command.__signature__ = inspect.signature(fact.command)  # type: ignore[attr-defined]
    return type(fact.__name__, (fact,), {"command": command, "__module__": fact.__module__})
