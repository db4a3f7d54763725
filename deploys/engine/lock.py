"""One djangohost run at a time on a host.

A run takes the host's lock with its first operation and gives it back with its last, or as soon
as the host fails; a run with nothing to change on the host takes none. A second run that finds
the lock taken stops before it changes anything, naming who holds it. It does not wait: what it
would do was planned from the host as it was before the other run changed it. A lock whose run
was interrupted stays until /run is cleared (a reboot) or it is removed; a run from the same
machine sees that its holder is gone and takes it over.

The lock lives in root's own directory (RUN_DIR, 0700), never in /run/lock, where any user may
create: an app's user could take the lock's name there first, and every run would stop, showing
the operator whatever that user wrote as the holder.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pyinfra import host, state
from pyinfra.api import BaseStateCallback, FactBase, Host, operation
from pyinfra.api import State as Run

from deploys.engine import safe
from deploys.engine.run import RUN
from deploys.engine.templates import render
from deploys.model.paths import RUN_DIR

LOCK = f"{RUN_DIR}/lock"
# This run: what it writes into the lock, and the hosts whose lock it holds.
TOKEN = uuid.uuid4().hex
CONTROLLER = socket.gethostname()
HOLDER = (f"{getpass.getuser()}@{CONTROLLER} pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, "
          f"{' '.join(sys.argv[1:])[-200:]}")


class TakeLock(FactBase[str]):
    """
    Take the host's lock for this run (a directory: mkdir is atomic): "" when taken, otherwise
    who holds it. With `stale` (what the lock said), a lock still saying so is taken over.

    .. code:: python

        "alice@laptop pid 4242 since 2026-11-23 09:10:03 UTC, -y inventory.py deploys/site.py"
    """

    def command(self, token: str, holder: str, stale: str = "") -> str:  # type: ignore[override]
        return render("engine/take-lock.sh.j2", run_dir=RUN_DIR, lock=LOCK, token=token, holder=holder, stale=stale)

    def process(self, output: Iterable[str]) -> str:  # type: ignore[override]
        return "\n".join(output).strip()


class ReleaseLock(FactBase[str]):
    """Give the host's lock back, if this run (`token`) holds it. Returns nothing."""

    def command(self, token: str) -> str:  # type: ignore[override]
        lock = shlex.quote(LOCK)
        return f"[ \"$(cat {lock}/token 2>/dev/null)\" = {shlex.quote(token)} ] && rm -rf {lock}; true"

    def process(self, output: Iterable[str]) -> str:  # type: ignore[override]
        return ""


def gone(holder: str) -> bool:
    """Whether the lock's holder is a run of this machine that is no longer running."""
    words = holder.split()
    if len(words) < 3 or words[0].rpartition("@")[2] != CONTROLLER or not words[2].isdigit():
        return False
    try:
        os.kill(int(words[2]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def held(needed: object = True, taken: bool = False) -> Iterator[None]:
    """The operations added inside run holding the host's lock (unless not `needed`: a host the
    run leaves alone takes none). A run that changes nothing on the host takes none either (two
    round trips), unless the lock was `taken` as the host was read: then it stops as any would."""
    if not needed:
        yield
        return
    # Decided once every operation is planned: pyinfra's -y plans without looking for changes,
    # so each one is asked (as a dry run asks it), not counted.
    changing: list[bool] = []
    take(name="One run at a time: the host's lock", _if=lambda: changing[0])
    before = set(state.ops[host])
    yield
    changing.append(taken or any(data.operation_meta.will_change for op_hash, data in state.ops[host].items()
                                 if op_hash not in before))
    give_back(name="The host's lock given back", _if=lambda: changing[0])


@operation(is_idempotent=False)
def take():
    """
    Take the host's lock as the run starts (a dry run takes none); stop the host when another
    run holds it.
    """
    if not state.is_executing:
        host.noop("the host's lock is taken as the run starts")
        return
    Release.watch()
    holder = host.get_fact(TakeLock, token=TOKEN, holder=HOLDER)
    if holder and gone(holder):
        holder = host.get_fact(TakeLock, token=TOKEN, holder=HOLDER, stale=holder)
    if not holder:
        RUN.locked.add(host.name)
        host.noop("this run holds the host's lock")
        return
    if holder.startswith("djangohost: "):  # no place for the lock (see templates/engine/run-dir.sh.j2)
        message = f"{safe.printable(holder)}; host {host.name}: this run stopped before changing anything"
    else:
        message = (f"djangohost: host {host.name} is being changed by another run ({safe.printable(holder)}); this "
                   f"run stopped before changing anything. If no other run is going on (an interrupted run leaves "
                   f"its lock behind), remove the lock: rm -r {LOCK}")
    yield f"echo {shlex.quote(message)} >&2; exit 1"


@operation(is_idempotent=False)
def give_back():
    """Give the host's lock back as the run ends."""
    if state.is_executing:
        release(host)
    host.noop("the host's lock is given back")
    yield from ()  # nothing to run: the release is the fact's command


def release(target: Host) -> None:
    if target.name in RUN.locked:
        RUN.locked.discard(target.name)
        target.get_fact(ReleaseLock, token=TOKEN)


class Release(BaseStateCallback):
    """Gives a host's lock back as soon as an error (not one an app's deploy may ignore, see
    deploys.engine.ops.Guard) stops the host: its last operation will not run."""

    @classmethod
    def watch(cls) -> None:
        if not any(isinstance(handler, cls) for handler in state.callback_handlers):
            state.add_callback_handler(cls())

    @staticmethod
    def operation_host_error(run: Run, target: Host, op_hash, retry_attempt=0, max_retries=0) -> None:
        if not run.get_op_data_for_host(target, op_hash).global_arguments.get("_ignore_errors"):
            release(target)
