#!/usr/bin/python3
# managed by djangohost: /usr/local/sbin/djangohost-notify, the host's alerts, sent from the host
"""The host's alerts: a short JSON message (host, app, event, reason, time) to a webhook and/or
an e-mail address (the host's sendmail), so that failures nobody watches are still told.

    djangohost-notify send < {"app": ..., "event": ..., "reason": ...}
    djangohost-notify event APP EVENT REASON...     the same, from arguments (cron, jobs)
        Deliver the message now; what cannot be delivered waits in the spool.
    djangohost-notify flush
        Retry every spooled message now, whatever its backoff (once the webhook is back).
    djangohost-notify cron
        (every minute, from cron) Retry the spool, each message after a backoff; alert when an
        app's Gunicorn was restarted more than `restarts` times in the last hour, or when an app's
        newest good backup is older than its schedule allows plus an hour.

Its settings (CONFIG, root's alone: the webhook's URL may hold a token) are djangohost's; the
spool keeps at most SPOOL_MAX messages (the oldest go first). Python's standard library only.
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
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HOME = Path("/var/lib/djangohost/notify")
CONFIG = HOME / "config.json"
SPOOL_MAX = 200
# And at most this many of one app's: an app whose job fails every minute while the webhook is down
# cannot push the others' messages out.
SPOOL_PER_APP = 20
TIMEOUT = 10
# Seconds before the first retry, doubled at each failure up to BACKOFF_MAX.
BACKOFF, BACKOFF_MAX = 60, 3600
SUPERVISOR_LOG = Path("/var/log/supervisor/supervisord.log")
BACKUP_TOOL = "/usr/local/sbin/djangohost-backup"
# A backup is late past its period and this grace (it takes time; cron starts it on the minute).
GRACE = 3600
# An alert about a state that lasts (restarts, a late backup) is said again after this long.
REPEAT = 6 * 3600
APP_RE = re.compile(r"[a-z][a-z0-9_]{0,30}")
EVENT_RE = re.compile(r"[a-z_]{1,40}")
REASON_MAX = 1000
LOG = HOME / "cron.log"
LOG_MAX = 256 * 1024
# supervisord's lines about a program that exited when it should not have.
EXITED_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ \w+ exited: (\S+) \(.*not expected\)")


def config() -> dict[str, Any]:
    try:
        found = json.loads(CONFIG.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def message_of(given: dict[str, Any], host: str, now: float) -> dict[str, str]:
    """The message: the app, the event and the reason given (cut short), the host and the time."""
    app, event = str(given.get("app", "")), str(given.get("event", ""))
    if not APP_RE.fullmatch(app) or not EVENT_RE.fullmatch(event):
        raise ValueError("a message needs an app name and an event (lowercase letters and _)")
    return {"host": host, "app": app, "event": event, "reason": str(given.get("reason", ""))[:REASON_MAX],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}


def post(url: str, message: dict[str, str]) -> None:
    """POST the message as JSON; raises OSError (urllib's errors among them) unless it is taken."""
    request = urllib.request.Request(url, data=json.dumps(message).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "djangohost-notify"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310 (http and https only: schema)
        if not 200 <= answer.status < 300:
            raise OSError(f"the webhook answered {answer.status}")


def mail(address: str, message: dict[str, str]) -> None:
    """Send the message through the host's sendmail; raises OSError when it is not taken."""
    sendmail = shutil.which("sendmail") or shutil.which("sendmail", path="/usr/sbin:/usr/lib")
    if not sendmail:
        raise OSError("no sendmail on this host")
    # One header line, whatever the inventory named the host.
    subject = " ".join(f"djangohost: {message['event']} of {message['app']} on {message['host']}".split())
    text = f"To: {address}\nSubject: {subject}\nContent-Type: application/json\n\n{json.dumps(message, indent=1)}\n"
    done = subprocess.run([sendmail, "-t", "-oi"], input=text, text=True, capture_output=True, timeout=60)
    if done.returncode:
        raise OSError(f"sendmail exited with {done.returncode}")


def deliver(message: dict[str, str], channels: list[str], settings: dict[str, Any]) -> list[str]:
    """Try each of `channels` (webhook, email); returns those that failed. What failed is said
    without the webhook's URL, which is a secret."""
    failed = []
    for channel in channels:
        try:
            if channel == "webhook":
                post(settings["webhook"], message)
            else:
                mail(settings["email"], message)
        except (OSError, KeyError, ValueError, subprocess.SubprocessError) as error:
            print(f"djangohost-notify: {channel} failed: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr)
            failed.append(channel)
    return failed


def channels_of(settings: dict[str, Any]) -> list[str]:
    return [channel for channel in ("webhook", "email") if settings.get(channel)]


def spool(message: dict[str, str], channels: list[str], now: float, attempts: int = 1) -> None:
    """Keep the message for the channels that failed, to be retried after the backoff; the oldest
    messages go past SPOOL_PER_APP of its app, and past SPOOL_MAX."""
    directory = HOME / "spool"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = {"message": message, "channels": channels, "attempts": attempts,
             "next": now + min(BACKOFF * 2 ** (attempts - 1), BACKOFF_MAX)}
    app = message["app"]  # APP_RE's: no "-"
    name = directory / f"{int(now * 1000):016d}-{app}-{uuid.uuid4().hex[:8]}.json"
    temp = name.with_suffix(".new")
    temp.write_text(json.dumps(entry))
    os.replace(temp, name)
    for old in [*sorted(directory.glob(f"*-{app}-*.json"))[:-SPOOL_PER_APP],
                *sorted(directory.glob("*.json"))[:-SPOOL_MAX]]:
        old.unlink(missing_ok=True)


def send(given: dict[str, Any], now: float) -> int:
    settings = config()
    message = message_of(given, str(settings.get("host", os.uname().nodename)), now)
    channels = channels_of(settings)
    failed = deliver(message, channels, settings)
    if failed:
        spool(message, failed, now)
    return 0


def retry(now: float, settings: dict[str, Any], every: bool = False) -> None:
    """Send each spooled message that is due again (`every`: each one): gone once every channel
    took it, otherwise kept for a later try, further off each time."""
    for path in sorted((HOME / "spool").glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if entry.get("next", 0) > now and not every:
            continue
        failed = deliver(entry["message"], [c for c in entry["channels"] if c in channels_of(settings)], settings)
        path.unlink()
        if failed:
            spool(entry["message"], failed, now, entry.get("attempts", 1) + 1)


def restarts(app: str, lines: list[str], now: float) -> int:
    """How often supervisord saw the app's Gunicorn (its program, named after the app) exit when
    it should not have, within the last hour (supervisord writes its local time)."""
    count = 0
    for text in lines:
        found = EXITED_RE.match(text)
        if found and found.group(2) == app:
            when = time.mktime(time.strptime(found.group(1), "%Y-%m-%d %H:%M:%S"))
            count += now - 3600 <= when <= now + 60
    return count


def log_tail(path: Path, size: int = 1 << 20) -> list[str]:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - size))
            return file.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def newest_backup(app: str) -> float | None:
    """When the app's newest good backup was made, as the backup tool lists them (None: none)."""
    listed = subprocess.run([BACKUP_TOOL, "list", app], capture_output=True, text=True, timeout=120)
    times = [json.loads(line).get("created", 0) for line in listed.stdout.splitlines() if line.startswith("{")]
    return max(times) if times else None


def problems(settings: dict[str, Any], now: float, seen: dict[str, float]) -> list[dict[str, str]]:
    """What is wrong now: Gunicorns restarted too often, backups late (an app without any counts
    from when this check first saw it)."""
    found = []
    lines = log_tail(SUPERVISOR_LOG)
    for app in settings.get("apps", []):
        count = restarts(app["name"], lines, now)
        if count > int(settings.get("restarts", 3)):
            found.append({"app": app["name"], "event": "gunicorn_restarts",
                          "reason": f"Supervisor restarted its Gunicorn {count} times in the last hour"})
        period = app.get("backup_period")
        if period and os.access(BACKUP_TOOL, os.X_OK):
            newest = newest_backup(app["name"]) or seen.get(app["name"], now)
            if now - newest > period + GRACE:
                found.append({"app": app["name"], "event": "backup_late",
                              "reason": f"no good backup for {int((now - newest) // 60)} min (one every "
                                        f"{period // 60} min expected)"})
    return found


def check(settings: dict[str, Any], now: float) -> None:
    """Alert each problem once, then again only after REPEAT while it lasts."""
    state_path = HOME / "state.json"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    alerted: dict[str, float] = state.get("alerted", {})
    seen: dict[str, float] = state.get("seen", {})
    for app in settings.get("apps", []):
        seen.setdefault(app["name"], now)
    for problem in problems(settings, now, seen):
        key = f"{problem['app']} {problem['event']}"
        if key not in alerted or now - alerted[key] >= REPEAT:
            send(problem, now)
            alerted[key] = now
    state_path.write_text(json.dumps({"alerted": {key: when for key, when in alerted.items() if now - when < REPEAT},
                                      "seen": seen}))


def trim(path: Path, size: int = LOG_MAX) -> None:
    """Keep a log of this program's below `size`: its newest half stays."""
    try:
        if path.stat().st_size > size:
            path.write_bytes(path.read_bytes()[-size // 2:])
    except OSError:
        pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djangohost-notify")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("send")
    event = commands.add_parser("event")
    event.add_argument("app")
    event.add_argument("event")
    event.add_argument("reason", nargs="*")
    commands.add_parser("cron")
    commands.add_parser("flush")
    arguments = parser.parse_args(argv)
    os.umask(0o077)
    HOME.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = time.time()
    try:
        if arguments.command == "send":
            given = json.loads(sys.stdin.read(1 << 16))
            return send(given if isinstance(given, dict) else {}, now)
        if arguments.command == "event":
            return send({"app": arguments.app, "event": arguments.event, "reason": " ".join(arguments.reason)}, now)
        with open(HOME / ".lock", "a") as lock:  # one run over the spool at a time
            try:
                # cron's next run leaves it to the one still going (a slow webhook), flush waits.
                fcntl.flock(lock, fcntl.LOCK_EX | (fcntl.LOCK_NB if arguments.command == "cron" else 0))
            except BlockingIOError:
                return 0
            if arguments.command == "flush":
                retry(now, config(), every=True)
                return 0
            trim(LOG)
            retry(now, config())
            check(config(), now)
    except ValueError as error:
        print(f"djangohost-notify: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
