#!/usr/bin/python3
# managed by djangohost: /usr/local/sbin/djangohost-history, what each run did to each app
"""The history of each app on this host: one JSON line per run that changed it, root's alone.

    djangohost-history record APP < ENTRY
        Append ENTRY (a JSON object: command, result, reason, step, release, commit, fingerprint,
        operator) to APP's history, with the time and the login that ran it; only the newest KEEP
        entries stay. When the result is a failure, the notifier (djangohost-notify) is told.
    djangohost-history show [--last N] APP...
        The entries of each APP as JSON: {"APP": [entry, ...], ...}, oldest first.

Each entry is one line that json.dumps wrote with every non-ASCII and control character escaped:
a reason holding a line break or a terminal's escape (an app's traceback) stays inside its entry,
and the file is replaced whole under a lock, so a reader sees either the old file or the new one.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HISTORY = Path("/var/lib/djangohost/history")
NOTIFY_TOOL = "/usr/local/sbin/djangohost-notify"
KEEP = 200
APP_RE = re.compile(r"[a-z][a-z0-9_]{0,30}")
RESULTS = {"deployed", "unchanged", "refused", "rolled_back", "failed", "restored"}
# What a failure alerts as (djangohost-notify's event names).
ALERTS = {"refused": "deploy_refused", "failed": "deploy_failed", "rolled_back": "health_gate_rolled_back"}
# The fields an entry may carry, each cut to this many characters.
FIELDS = {"command": 40, "result": 20, "by": 40, "reason": 2000, "step": 200, "release": 80, "commit": 64,
          "fingerprint": 64, "operator": 200}


class Refused(Exception):
    """An entry that is not recorded: the message says why."""


def entry_of(raw: str, login: str, now: float) -> dict[str, Any]:
    """The entry to record from the JSON object `raw`: known fields only, each a string cut to its
    length, with the time and `login` added."""
    try:
        given = json.loads(raw)
    except ValueError as error:
        raise Refused(f"not JSON: {error}") from None
    if not isinstance(given, dict):
        raise Refused("not a JSON object")
    if given.get("result") not in RESULTS:
        raise Refused(f"result must be one of {', '.join(sorted(RESULTS))}")
    entry: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "login": login}
    for key, limit in FIELDS.items():
        value = given.get(key)
        if value not in (None, ""):
            entry[key] = str(value)[:limit]
    return entry


def line(entry: dict[str, Any]) -> str:
    """One line: json.dumps escapes every control character and, with ensure_ascii, U+2028 too."""
    return json.dumps(entry, ensure_ascii=True, sort_keys=True) + "\n"


def history_file(app: str) -> Path:
    if not APP_RE.fullmatch(app):
        raise Refused(f"{app!r} is not an app name")
    return HISTORY / f"{app}.jsonl"


def _directory() -> None:
    """Root's own directory: made 0700, and refused when it is anything else (a link)."""
    HISTORY.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = os.lstat(HISTORY)
    if not os.path.isdir(HISTORY) or os.path.islink(HISTORY) or found.st_uid != os.geteuid():
        raise Refused(f"{HISTORY} is not a directory of root's")
    os.chmod(HISTORY, 0o700)


def read_lines(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.readlines()
    except FileNotFoundError:
        return []


def append(app: str, entry: dict[str, Any], keep: int = KEEP) -> None:
    """Add `entry` to the app's history, keeping the newest `keep`: the whole file written anew
    (0600) and renamed over the old one, under the directory's lock."""
    path = history_file(app)
    _directory()
    with open(HISTORY / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept = [line(old) for old in entries(app)][-(keep - 1):] if keep > 1 else []
        temp = path.with_suffix(".new")
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.writelines([*kept, line(entry)])
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)


def entries(app: str, last: int | None = None) -> list[dict[str, Any]]:
    """The app's entries, oldest first (the newest `last` of them); lines that are not entries
    are left out."""
    found = []
    for text in read_lines(history_file(app)):
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found[-last:] if last else found


def alert(app: str, entry: dict[str, Any]) -> None:
    """Tell the notifier of a failed run, when it is installed; its failure is not this one's."""
    event = ALERTS.get(entry["result"])
    if event is None or not shutil.which(NOTIFY_TOOL):
        return
    message = {"app": app, "event": event, "reason": entry.get("reason", "")}
    subprocess.run([NOTIFY_TOOL, "send"], input=json.dumps(message), text=True, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def login() -> str:
    """Who ran it: the user sudo was given by (SUDO_USER), or the user itself."""
    import pwd

    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djangohost-history")
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record")
    record.add_argument("app")
    show = commands.add_parser("show")
    show.add_argument("--last", type=int, default=None)
    show.add_argument("apps", nargs="+")
    arguments = parser.parse_args(argv)
    os.umask(0o077)
    try:
        if arguments.command == "record":
            entry = entry_of(sys.stdin.read(1 << 16), login(), time.time())
            append(arguments.app, entry)
            alert(arguments.app, entry)
        else:
            print(json.dumps({app: entries(app, arguments.last) for app in arguments.apps}, ensure_ascii=True))
    except Refused as refused:
        print(f"djangohost-history: {refused}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
