"""Day two: each app's history on its host (deploys, a refused release, a health gate's and
rollback.py's rollbacks, shown by the status view and deploys/history.py), and the host's alerts
to a webhook the test runs inside the container (a failed deploy, a failed job, a Gunicorn
restarted too often, a message spooled while the webhook is down and delivered later)."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import pyinfra, sh, wait_for, write_inventory

pytestmark = pytest.mark.e2e

TOKEN = "s3cr3t-hook-token"
PORT = 8199
WEBHOOK = f"http://127.0.0.1:{PORT}/hook/{TOKEN}"
RECEIVED = "/root/received.jsonl"
HISTORY = "/var/lib/djangohost/history/hello.jsonl"
NOTIFY = "/usr/local/sbin/djangohost-notify"
# A webhook of the test's own, on the container's loopback: each POST's body, a line apiece.
RECEIVER = f"""
import http.server
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open({RECEIVED!r}, "ab") as log:
            log.write(self.path.encode() + b" " + body + b"\\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", {PORT}), Hook).serve_forever()
"""
JOB = {"name": "broken", "command": "manage nosuchcommand", "cron": "0 0 1 1 *"}
HOST_DATA = {"djangohost_notify": {"webhook": WEBHOOK, "restarts": 3}}


@pytest.fixture(scope="module")
def site(deploy_examples):
    deployed = deploy_examples("history", {"hello": {"schedule": [JOB], "health_timeout": 10}}, **HOST_DATA)
    receiver("start", deployed["container"])
    return deployed


def receiver(action: str, container: str) -> None:
    if action == "start":
        sh(container, f"cat >/root/receiver.py <<'EOF'\n{RECEIVER}\nEOF\n"
                      "(setsid python3 /root/receiver.py </dev/null >/dev/null 2>&1 &)")
        wait_for(lambda: sh(container, f"ss -ltn | grep -c 127.0.0.1:{PORT}", check=False) == "1")
    else:
        sh(container, "pkill -f '[r]eceiver.py'; true")
        wait_for(lambda: sh(container, f"ss -ltn | grep -c 127.0.0.1:{PORT}", check=False) == "0")


def received(container: str, event: str) -> list[dict]:
    """The messages of `event` the webhook got, each checked to have come to the right URL."""
    found = []
    for line in sh(container, f"cat {RECEIVED} 2>/dev/null", check=False).splitlines():
        path, body = line.split(" ", 1)
        assert path == f"/hook/{TOKEN}"
        message = json.loads(body)
        if message["event"] == event:
            found.append(message)
    return found


def entries(container: str) -> list[dict]:
    return [json.loads(line) for line in sh(container, f"cat {HISTORY}").splitlines()]


def rerun(site, *args: str, check: bool = True, host_data: dict = HOST_DATA, **fields):
    """site.py again, with hello's entry changed by `fields`."""
    apps = [dict(app, **fields) for app in site["apps"]]
    inventory = write_inventory(site["workdir"] / "changed.py", site["container"], apps, **host_data)
    return pyinfra(inventory, *args, check=check, json_results="--diff" not in args)


def test_a_deploy_is_recorded_root_only_and_a_no_op_run_records_nothing(site):
    container = site["container"]
    [first] = entries(container)
    assert first["command"] == "site" and first["result"] == "deployed" and first["login"] == "root"
    assert first["release"] == sh(container, "readlink /webapps/hello/current").rsplit("/", 1)[-1]
    assert re.fullmatch(r"[0-9a-f]{64}", first["fingerprint"]) and "@" in first["operator"]
    assert sh(container, f"stat -c '%U:%G %a' /var/lib/djangohost/history {HISTORY}").splitlines() == [
        "root:root 700", "root:root 600"]
    again = pyinfra(site["inventory"])
    assert again.changed() == []
    dry = rerun(site, "--dry", env={"NEW": "1"})
    assert any(name.endswith("hello: history") for name in dry.planned())
    assert len(entries(container)) == 1  # neither the no-op run nor the dry run recorded anything


def test_the_apps_user_reads_neither_the_history_nor_the_alerts_settings(site):
    container = site["container"]
    for path in (HISTORY, "/var/lib/djangohost/notify/config.json", "/var/lib/djangohost/notify/spool"):
        denied = sh(container, f"su -s /bin/sh hello -c 'cat {path} || ls {path}' 2>&1", check=False)
        assert "Permission denied" in denied
    assert TOKEN in sh(container, "cat /var/lib/djangohost/notify/config.json")


def test_the_webhooks_token_is_in_no_output_or_diff(site):
    other = {"djangohost_notify": {"webhook": f"{WEBHOOK}-rotated", "restarts": 3}}
    diff = rerun(site, "--dry", "--diff", host_data=other)
    assert "Will modify /var/lib/djangohost/notify/config.json (secret: not shown)" in diff.output
    changed = rerun(site, "-vvv", host_data=other)
    rerun(site)  # back to the module's webhook
    for run in (diff, changed):
        assert TOKEN not in run.output


def test_a_refused_release_is_recorded_with_its_reason_and_alerted(site):
    container = site["container"]
    settings = site["workdir"] / "hello" / "hello" / "settings.py"
    good = settings.read_text()
    # The app's own text in the reason (a line break, a terminal's escape, a forged entry) stays
    # inside its entry.
    settings.write_text(good + '\nraise RuntimeError("broken\\n{\\"result\\": \\"deployed\\"}\\x1b[2J")\n')
    try:
        run = rerun(site, check=False)
    finally:
        settings.write_text(good)
    assert run.returncode != 0
    last = entries(container)[-1]
    assert last["result"] == "refused" and last["step"].endswith("hello: candidate check passed")
    assert "RuntimeError: broken\n{\"result\": \"deployed\"}" in last["reason"]
    assert sh(container, f"wc -l <{HISTORY}") == str(len(entries(container)))
    [alert] = wait_for(lambda: received(container, "deploy_refused"))
    assert alert["app"] == "hello" and alert["host"] == f"@docker/{container}"
    assert "RuntimeError: broken" in alert["reason"] and alert["time"].endswith("Z")
    assert TOKEN not in run.output


def test_a_health_gate_rollback_and_a_rollback_are_recorded_and_shown(site):
    container = site["container"]
    live = sh(container, "readlink /webapps/hello/current")
    views = site["workdir"] / "hello" / "hello" / "views.py"
    good = views.read_text()
    views.write_text(good.replace("def home(request):\n", "def home(request):\n    if 'HTTP_X_REAL_IP' in "
                                  "request.META:\n        raise RuntimeError('hello fails behind Nginx')\n"))
    try:
        run = rerun(site, check=False)
    finally:
        views.write_text(good)
    assert run.returncode != 0 and sh(container, "readlink /webapps/hello/current") == live
    gate = entries(container)[-1]
    assert (gate["result"], gate["by"]) == ("rolled_back", "health gate")
    assert f"rolled back to {live}" in gate["reason"]
    assert wait_for(lambda: received(container, "health_gate_rolled_back"))

    views.write_text(good + "\n# a second good release\n")
    try:
        pyinfra(site["inventory"])
    finally:
        views.write_text(good)
    # Named: the release the gate refused passed its candidate check, and is the newer of the two.
    pyinfra(site["inventory"], "--data", "app=hello", "--data", f"release={live.rsplit('/', 1)[-1]}",
            deploy="deploys/rollback.py")
    back = entries(container)[-1]
    assert (back["command"], back["result"], back["by"]) == ("rollback", "rolled_back", "rollback.py")
    assert back["release"] == live.rsplit("/", 1)[-1] == sh(container, "readlink /webapps/hello/current")[9:]

    status = pyinfra(site["inventory"], deploy="deploys/status.py")
    shown = [line.strip() for line in status.output.splitlines() if line.strip().startswith("history ")]
    assert len(shown) == 3 and "rolled_back by rollback.py" in shown[-1]
    everything = pyinfra(site["inventory"], "--data", "app=hello", deploy="deploys/history.py")
    assert f"hello: {len(entries(container))} entries" in everything.output
    assert "refused" in everything.output and "rolled_back by health gate" in everything.output
    # What the app controlled reaches the terminal escaped, and forges no entry.
    assert "\x1b[2J" not in everything.output and "\\x1b[2J" in everything.output
    assert not re.search(r"^\s*\{\"result\"", everything.output, re.MULTILINE)


def test_a_failed_job_is_alerted(site):
    container = site["container"]
    sh(container, f"/webapps/hello/bin/job broken {JOB['command']}", check=False)
    [alert] = wait_for(lambda: received(container, "job_failed"))
    assert alert["reason"] == "job broken exited with status 1" and alert["app"] == "hello"


def test_a_gunicorn_restarted_too_often_is_alerted_once(site):
    container = site["container"]
    for _ in range(4):  # restarts is 3
        pid = sh(container, "supervisorctl pid hello")
        sh(container, f"kill -9 {pid}")
        wait_for(lambda old=pid: sh(container, "supervisorctl pid hello", check=False) not in ("0", old, "")
                 and "RUNNING" in sh(container, "supervisorctl status hello", check=False))
    sh(container, f"{NOTIFY} cron")  # what cron runs every minute
    sh(container, f"{NOTIFY} cron")
    [alert] = received(container, "gunicorn_restarts")
    assert alert["reason"] == "Supervisor restarted its Gunicorn 4 times in the last hour"


def test_an_alert_the_webhook_missed_is_spooled_then_delivered(site):
    container = site["container"]
    receiver("stop", container)
    sh(container, f"{NOTIFY} event hello backup_failed the disk is full")
    spooled = sh(container, "ls /var/lib/djangohost/notify/spool").split()
    assert len(spooled) == 1 and received(container, "backup_failed") == []
    assert sh(container, f"stat -c '%a' /var/lib/djangohost/notify/spool/{spooled[0]}") == "600"
    assert TOKEN not in sh(container, "cat /var/lib/djangohost/notify/spool/*")
    receiver("start", container)
    assert f"root {NOTIFY} cron" in sh(container, "cat /etc/cron.d/djangohost-notify")
    sh(container, f"{NOTIFY} flush")  # cron's run, without waiting for the backoff
    [alert] = received(container, "backup_failed")
    assert alert["reason"] == "the disk is full"
    assert sh(container, "ls /var/lib/djangohost/notify/spool") == ""
