"""The history of each app on its host: what each run did to it, when, who ran it, which release.

Whether an app's deploy went through is known only as the run ends (a risky step that failed,
see engine.ops.Guard), so each command ends with one operation per app whose command is made as
it runs: it hands the outcome, as JSON on standard input, to the host's djangohost-history
(templates/history/), which appends one entry to the app's file, root's alone. A run that changes
nothing of an app makes no such operation: a no-op run records nothing and still changes nothing.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import socket
from collections.abc import Callable
from typing import Any

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.api.operation import OperationMeta

from deploys.components import Component
from deploys.engine import ops, safe
from deploys.engine.ops import Guard
from deploys.model.inventory import App
from deploys.model.programs import TEMPLATES
from facts.state import State

TOOL = "/usr/local/sbin/djangohost-history"
HISTORY = "/var/lib/djangohost/history"
#: Who runs pyinfra: recorded beside the login the host saw.
OPERATOR = f"{getpass.getuser()}@{socket.gethostname()}"
#: An entry's reason: the line a failed step says it with (health.py, steps, the tools).
SAID = re.compile(r"^djangohost: ")
REASON_LINES = 3
REASON_LINE = 500  # characters of each: an app's output may be one line of any length
#: The operations that check an app rather than change it.
CHECKS = (": health gate",)
#: Entries of each app the status view shows.
RECENT = 3

Entry = dict[str, Any]


def fingerprint(app: App) -> str:
    """A digest of the app's resolved entry, its secrets' values hashed: two runs from the same
    entry share it, and it tells no secret."""
    entry: dict[str, Any] = app.entry.model_dump(mode="json") if app.entry is not None else {"name": app.name}
    secrets: dict[str, Any] = entry.get("secrets") or {}
    entry["secrets"] = {key: hashlib.sha256(str(value).encode()).hexdigest() for key, value in secrets.items()}
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()


def operations_of(app: App) -> list[tuple[str, OperationMeta]]:
    """The operations made so far for the app on this host, by name (every per-app operation is
    named "APP: what it does"), in their order."""
    named = re.compile(rf"(?:^|\| ){re.escape(app.name)}: ")
    run = host.state
    found = []
    for op_hash, data in run.ops[host].items():
        name = next((name for name in sorted(run.op_meta[op_hash].names) if named.search(name)), None)
        if name is not None:
            found.append((name, data.operation_meta))
    return found


def reason_of(op: OperationMeta) -> str:
    """What a failed operation said: its "djangohost: ..." lines, then its last lines (the end of
    a traceback: the error itself)."""
    lines = [line[:REASON_LINE] for line in [*op.stdout_lines, *op.stderr_lines] if line.strip()]
    said = [line for line in lines if SAID.match(line)][-REASON_LINES:]
    last = [line for line in lines[-REASON_LINES:] if line not in said]
    return "\n".join([*said, *last])


def changed(operations: list[tuple[str, OperationMeta]]) -> bool:
    """Whether the run changed anything of the app (while pyinfra plans: will), its checks aside:
    a health gate run because Nginx reloaded for another app changed nothing of this one."""
    made = [op for name, op in operations if not name.endswith(CHECKS)]
    if not host.state.is_executing:
        return any(op.will_change for op in made)
    return any(op.is_complete() and op.did_change() for op in made)


def outcome(guard: Guard, operations: list[tuple[str, OperationMeta]]) -> Entry:
    """As the run ends: the result of the app's deploy, the step that failed and why."""
    failed = next(((name, op) for name, op in operations if op.is_complete() and op.did_error()), None)
    if failed is None:
        if guard.failed():
            return {"result": "failed", "reason": "an earlier app server's deploy of it failed"}
        return {"result": "deployed" if changed(operations) else "unchanged"}
    step, op = failed
    reason = reason_of(op)
    if "health gate" in step:
        result = "rolled_back" if "; rolled back to " in reason else "failed"
        return {"result": result, "by": "health gate", "step": step, "reason": reason}
    result = "refused" if "candidate check" in step or " is refused" in reason else "failed"
    return {"result": result, "step": step, "reason": reason}


def record_command(app: App) -> list[str]:
    """The history program's command for `app` (a host deployed before the history was, by a
    rollback or restore first, records nothing yet)."""
    return ["sh", "-c", '[ ! -x "$0" ] || exec "$0" record "$1"', TOOL, app.name]


def record_input(entry: Entry) -> str:
    """What the history program reads for `entry`: one JSON line, on its standard input (a
    reason holds an app's output: no command line carries it, where it would show in `ps` and
    could pass the kernel's 128 KiB for one argument)."""
    return json.dumps({**entry, "operator": OPERATOR}, ensure_ascii=True)


@operation(is_idempotent=False)
def recorded(app: App, entry: Callable[[], Entry]):
    """
    Record the app's entry in its history, made as the operation runs (so it knows the outcome);
    an app nothing of which changed, and that did not fail, records nothing (and changes nothing).

    + entry: what to record, asked as the operation runs
    """
    recording = entry()
    if recording["result"] == "unchanged":
        host.noop(f"nothing of {app.name} changed")
        return
    yield ops.fed(record_command(app), record_input(recording))


def program(state: State) -> None:
    """The history program, and root's directory of histories."""
    ops.directory(name=f"Directory {HISTORY}", path=HISTORY, owner="root", group="root", mode="700",
                  current=state.paths.get(HISTORY))
    ops.file(name="History program", path=TOOL, content=(TEMPLATES / "history/djangohost-history.py").read_text(),
             owner="root", group="root", mode="755", current=state.paths.get(TOOL))


def deployed(app: App, guard: Guard, release: str, commit: str) -> OperationMeta:
    """The operation recording the app's deploy by site.py; none when no operation of the app will
    change anything (its checks included: a check that fails is recorded)."""
    operations = operations_of(app)
    if not ops.happened(op for _, op in operations):
        return ops.UNCHANGED
    # One app's record that fails (its host's disk full) stops no other app's.
    return recorded(name=f"{app.name}: history", app=app, _ignore_errors=True, entry=lambda: {
        "command": "site", "release": release, "commit": commit, "fingerprint": fingerprint(app),
        **outcome(guard, operations)})


@deploy("History")
def record(apps: list[App], guards: dict[str, Guard], changes: dict[str, Any], state: State) -> None:
    """Each app's entry for this run of site.py (see deployed); `changes`: each app's AppChanges,
    whose first input is the release it tried."""
    program(state=state)
    for app in host.loop(apps):
        mirror = state.mirrors.get(app.name)
        release = changes[app.name].inputs[0] if app.name in changes else ""
        deployed(app, guards[app.name], release, mirror.commit if mirror else "")


def rolled_back(app: App, switched: list[OperationMeta], live: str | None, target: str) -> OperationMeta:
    """The operation recording a rollback by rollback.py, when it switched the release."""
    if not ops.happened(switched):
        return ops.UNCHANGED
    # One app's record that fails (its host's disk full) stops no other app's.
    return recorded(name=f"{app.name}: history", app=app, _ignore_errors=True, entry=lambda: {
        "command": "rollback", "result": "rolled_back", "by": "rollback.py", "release": target,
        "reason": f"from {live} to {target}", "fingerprint": fingerprint(app)})


def restored(app: App, backup: str, media: bool) -> OperationMeta:
    """The operation recording a restore by restore.py."""
    # One app's record that fails (its host's disk full) stops no other app's.
    return recorded(name=f"{app.name}: history", app=app, _ignore_errors=True, entry=lambda: {
        "command": "restore", "result": "restored", "reason": f"backup {backup}{' with media' if media else ''}",
        "fingerprint": fingerprint(app)})


COMPONENT = Component("history", host_paths=(TOOL, HISTORY))


def line(entry: Entry) -> str:
    """One entry as the status view and history.py show it, on one line: what the host recorded
    is escaped (a reason may hold an app's text: a traceback, a terminal's escapes)."""
    by = f" by {entry['by']}" if entry.get("by") else ""
    what = " ".join(part for part in (
        str(entry.get("time", "?")), str(entry.get("command", "?")), f"{entry.get('result', '?')}{by}",
        str(entry.get("release") or "-"), f"commit {str(entry['commit'])[:12]}" if entry.get("commit") else "",
        f"by {entry.get('login', '?')} ({entry.get('operator', '?')})",
        f"inventory {str(entry.get('fingerprint', ''))[:12] or '-'}") if part)
    why = " ".join(part for part in (f"at {entry['step']}:" if entry.get("step") else "",
                                     str(entry.get("reason") or "")) if part)
    return safe.printable(f"{what}{': ' + why if why else ''}")
