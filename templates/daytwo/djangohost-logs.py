#!/usr/bin/python3
# managed by djangohost: the last lines of an app's logs, merged by time (deploys/logs.py runs it as root)
"""The last lines of some logs, merged by time, every line escaped; then, when asked, what is
written to them until the operator's run ends.

    python3 djangohost-logs.py --safe /usr/local/sbin/djangohost-safe SPEC

SPEC is JSON: {"logs": [[LABEL, PATH], ...], "lines": N, "since": "10m" | "2h" | "1d" | ISO time
| null, "follow": true | false}. Without follow it prints "TIME<TAB>LABEL<TAB>TEXT" for the last N
lines of all the logs together (only those of SINCE or later), oldest first, TIME in seconds since
the epoch. With follow it prints "LABEL  TEXT" for those lines, then for each line written to any
of the logs, until the session that started it goes (see follow()), or for 8 hours at most.

A line's time is the first date at its start that Gunicorn, Nginx, Celery, `date -Iseconds` or
Django write; a line without one (a traceback, what an app prints) takes the time of the next line
that has one, or else the log's last change: a line written after the time SINCE names is never
left out, one written a little before may be kept. Root reads the logs:
each is opened without following a link and read only if it is a regular file, and every line is
escaped with djangohost-safe's own function, for the text is the app's.
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import json
import os
import re
import select
import stat
import sys
import time
from datetime import datetime
from importlib.machinery import SourceFileLoader
from types import ModuleType

# How much of a log's end is read, whatever N: a log of huge lines is not read whole.
TAIL_BYTES = 4 << 20
# How often a followed log is looked at for new lines, rotation or truncation (seconds).
POLL = 0.3
# How long a follow lasts at most: where nothing tells that its reader left (docker exec's output
# stays open after the docker client went), it ends on its own.
FOLLOW_LIMIT = 8 * 3600
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RELATIVE = re.compile(r"([1-9][0-9]{0,5})([smhd])")
MONTHS = {name: index for index, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
# The dates that start a line: ISO (Gunicorn, Celery, `date -Iseconds`, Django), Nginx's error log
# (2026/12/08 01:23:45) and its access log ([08/Dec/2026:01:23:45 +0000], after the address).
ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,]\d+)?\s?(Z|[+-]\d{2}:?\d{2})?")
NGINX_ERROR = re.compile(r"^(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})")
NGINX_ACCESS = re.compile(r"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\]")
# Only a date near a line's start is the line's: one further in is the app's text.
HEAD = 64

Record = tuple[float, str, str]  # time, label, text


def parse_since(text: str, now: float) -> float:
    """The time `text` names: 10m, 2h, 1d, 30s before `now`, or an ISO time (the host's time zone
    when it names none). ValueError says what is accepted."""
    relative = RELATIVE.fullmatch(text.strip())
    if relative:
        return now - int(relative.group(1)) * UNITS[relative.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is not a time: say 30s, 10m, 2h, 1d or an ISO time "
                         "(2026-12-08T01:30:00, with +00:00 or Z for UTC)") from None


def line_time(line: str) -> float | None:
    """The time a log line starts with, or None."""
    head = line[:HEAD]
    if match := ISO.search(head):
        zone = match.group(7) or ""
        text = "-".join(match.group(1, 2, 3)) + "T" + ":".join(match.group(4, 5, 6)) + zone.replace("Z", "+00:00")
        return _timestamp(text)
    if match := NGINX_ERROR.search(head):
        return _timestamp("-".join(match.group(1, 2, 3)) + "T" + ":".join(match.group(4, 5, 6)))
    if (match := NGINX_ACCESS.search(line[:HEAD * 4])) and match.group(2) in MONTHS:
        day, month, year, hour, minute, second, zone = match.groups()
        return _timestamp(f"{year}-{MONTHS[month]:02d}-{day}T{hour}:{minute}:{second}{zone}")
    return None


def _timestamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def timed(label: str, lines: list[str], last_change: float) -> list[Record]:
    """The lines of one log with their times: an untimed line takes the time of the next line that
    has one, or `last_change` (when it was written, it was at most then)."""
    records = []
    current = last_change
    for line in reversed(lines):
        found = line_time(line)
        current = current if found is None else found
        records.append((current, label, line))
    return records[::-1]


def open_log(path: str) -> int | None:
    """A descriptor of the log at `path`: never through a link, never a FIFO or a device, never a
    file with another name elsewhere (a hard link www-data made in the Nginx logs) (None)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(fd)
        return None
    return fd


def tail(fd: int, count: int, end: int | None = None, limit: int = TAIL_BYTES) -> list[str]:
    """The last `count` lines of the file open at `fd` (of its first `end` bytes), from at most its
    last `limit` bytes."""
    end = os.fstat(fd).st_size if end is None else end
    start = max(0, end - limit)
    data = os.pread(fd, end - start, start)
    lines = data.decode(errors="backslashreplace").splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first is cut
    return lines[-count:] if count else []


def last_lines(logs: list[tuple[str, str]], count: int, since: float | None,
               ends: dict[str, int] | None = None) -> list[Record]:
    """The last `count` lines of all `logs` together, of `since` or later, oldest first; of each
    log, those before its offset in `ends` if it has one. Each log keeps its own order (Nginx writes
    a request's line when it ends, dated when it began)."""
    each = []
    for label, path in logs:
        fd = open_log(path)
        if fd is None:
            continue
        try:
            each.append(timed(label, tail(fd, count, (ends or {}).get(path)), os.fstat(fd).st_mtime))
        finally:
            os.close(fd)
    merged = list(heapq.merge(*each, key=lambda record: record[0]))
    if since is not None:
        merged = [record for record in merged if record[0] >= since]
    return merged[-count:] if count else []


class Followed:
    """A log read on as it grows: reopened when rotated away (a new file at its path) or cut short."""

    def __init__(self, label: str, path: str) -> None:
        self.label, self.path = label, path
        self.fd = open_log(path)
        self.position = os.fstat(self.fd).st_size if self.fd is not None else 0
        self.partial = b""

    def new_lines(self) -> list[str]:
        lines = self._read()
        if self._replaced():
            if self.fd is not None:
                os.close(self.fd)
            self.fd, self.position, self.partial = open_log(self.path), 0, b""
            lines += self._read()
        return lines

    def _read(self) -> list[str]:
        if self.fd is None:
            return []
        data = os.pread(self.fd, TAIL_BYTES, self.position)
        self.position += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        return [line.decode(errors="backslashreplace") for line in complete]

    def _replaced(self) -> bool:
        try:
            now = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        if self.fd is None:
            return True
        mine = os.fstat(self.fd)
        return (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev) or mine.st_size < self.position


def follow(followed: list[Followed], show: ModuleType, limit: float = FOLLOW_LIMIT) -> None:
    """Print each line written to the `followed` logs until no one is there any more: the terminal
    it runs in hangs up (ssh -tt went: SIGHUP ends it), its standard input ends when it is a pipe
    (docker exec -i went), or what it prints has no reader; or until `limit` seconds have passed."""
    watched = select.poll()
    watched.register(1, select.POLLERR | select.POLLHUP)
    if stat.S_ISFIFO(os.fstat(0).st_mode) or stat.S_ISSOCK(os.fstat(0).st_mode):
        watched.register(0, select.POLLIN | select.POLLHUP)
    end = time.monotonic() + limit
    while time.monotonic() < end:
        for log in followed:
            for line in log.new_lines():
                print(f"{log.label}  {show.printable(line)}", flush=True)
        for fd, _ in watched.poll(POLL * 1000):
            if fd == 1 or not os.read(0, 4096):
                return


def load_safe(path: str) -> ModuleType:
    """djangohost-safe, whose escaping the operator's machine uses too."""
    # Loaded by its path: on the host it has no .py suffix.
    spec = importlib.util.spec_from_loader("djangohost_safe", SourceFileLoader("djangohost_safe", path))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--safe", required=True, help="djangohost-safe, whose escaping is used")
    parser.add_argument("spec", type=json.loads)
    args = parser.parse_args()
    if not os.path.isfile(args.safe):
        parser.error(f"{args.safe} is missing: this host has not been deployed by djangohost (deploys/site.py)")
    show = load_safe(args.safe)
    logs = [(label, path) for label, path in args.spec["logs"]]
    since = parse_since(args.spec["since"], time.time()) if args.spec.get("since") else None
    if not args.spec.get("follow"):
        for when, label, text in last_lines(logs, int(args.spec["lines"]), since):
            print(f"{when:.3f}\t{label}\t{show.printable(text)}")
        return
    # Where following starts is where the last lines end: no line is shown twice, or missed.
    followed = [Followed(label, path) for label, path in logs]
    ends = {log.path: log.position for log in followed}
    for _, label, text in last_lines(logs, int(args.spec["lines"]), since, ends):
        print(f"{label}  {show.printable(text)}")
    sys.stdout.flush()
    follow(followed, show)


if __name__ == "__main__":
    main()
