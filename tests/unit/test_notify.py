"""The alerts: djangohost-notify run here against a webhook of the test's own and a stand-in
sendmail (delivered, spooled, retried after its backoff, the spool bounded), what it counts as
restarts, and the djangohost_notify setting's checks, which never show the webhook's URL."""

from __future__ import annotations

import http.server
import json
import stat
import threading
import time
from collections.abc import Iterator

import pytest

from deploys.components import notify
from deploys.model.inventory import InventoryError, host_settings
from deploys.model.programs import program

tool = program("notify/djangohost-notify.py")
SECRET = "http://127.0.0.1:{port}/hook/s3cr3t-token"


class Receiver(http.server.BaseHTTPRequestHandler):
    got: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        Receiver.got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[http.server.HTTPServer]:
    Receiver.got = []
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setattr(tool, "HOME", tmp_path / "notify")
    monkeypatch.setattr(tool, "CONFIG", tmp_path / "notify" / "config.json")
    (tmp_path / "notify").mkdir(mode=0o700)
    return tmp_path / "notify"


def configure(home, **settings: object) -> None:
    (home / "config.json").write_text(json.dumps({"host": "web1", "restarts": 3, **settings}))


def test_a_message_reaches_the_webhook(home, receiver):
    configure(home, webhook=SECRET.format(port=receiver.server_port))
    assert tool.main(["event", "shop", "job_failed", "job", "import", "exited", "with", "status", "1"]) == 0
    [got] = Receiver.got
    assert {key: got[key] for key in ("host", "app", "event", "reason")} == {
        "host": "web1", "app": "shop", "event": "job_failed", "reason": "job import exited with status 1"}
    assert not list((home / "spool").glob("*")) if (home / "spool").exists() else True


def test_an_undelivered_message_is_spooled_then_retried_after_its_backoff(home, receiver, capsys):
    port = receiver.server_port
    receiver.shutdown()
    receiver.server_close()
    configure(home, webhook=SECRET.format(port=port))
    tool.send({"app": "shop", "event": "deploy_failed", "reason": "boom"}, now=1000.0)
    [spooled] = (home / "spool").glob("*.json")
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o600 and stat.S_IMODE((home / "spool").stat().st_mode) == 0o700
    assert "s3cr3t" not in capsys.readouterr().err  # what failed is said without the URL
    again = http.server.HTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=again.serve_forever, daemon=True).start()
    try:
        tool.retry(1000.0 + tool.BACKOFF - 1, tool.config())  # not due yet
        assert Receiver.got == [] and list((home / "spool").glob("*.json"))
        tool.retry(1000.0 + tool.BACKOFF, tool.config())
        assert [got["reason"] for got in Receiver.got] == ["boom"]
        assert not list((home / "spool").glob("*.json"))
    finally:
        again.shutdown()
        again.server_close()


def test_each_failed_retry_waits_longer_and_the_spool_stays_bounded(home, monkeypatch):
    configure(home, webhook="http://127.0.0.1:9/nothing-listens")
    tool.send({"app": "shop", "event": "deploy_failed"}, now=0.0)
    waits = []
    for _ in range(4):
        [path] = (home / "spool").glob("*.json")
        entry = json.loads(path.read_text())
        waits.append(entry["next"])
        tool.retry(entry["next"], tool.config())
    assert [b - a for a, b in zip(waits, waits[1:], strict=False)] == [120.0, 240.0, 480.0]
    monkeypatch.setattr(tool, "SPOOL_MAX", 5)
    for number in range(12):
        tool.spool({"app": "shop", "event": "x", "reason": str(number)}, ["webhook"], now=10.0 + number)
    assert len(list((home / "spool").glob("*.json"))) == 5


def test_one_apps_flood_leaves_the_others_messages_spooled(home):
    """An app whose job fails every minute while the webhook is down keeps its newest messages
    only, and another app's (a failed backup) stays to be sent."""
    tool.spool({"app": "ledger", "event": "backup_failed", "reason": ""}, ["webhook"], now=1.0)
    for minute in range(300):
        tool.spool({"app": "shop", "event": "job_failed", "reason": str(minute)}, ["webhook"], now=60.0 * (minute + 1))
    spooled = [json.loads(path.read_text())["message"] for path in (home / "spool").glob("*.json")]
    assert [message["app"] for message in spooled].count("shop") == tool.SPOOL_PER_APP
    assert {"app": "ledger", "event": "backup_failed", "reason": ""} in spooled


def test_mail_goes_through_sendmail(home, tmp_path, monkeypatch):
    sendmail = tmp_path / "bin" / "sendmail"
    sendmail.parent.mkdir()
    sendmail.write_text(f"#!/bin/sh\necho \"$@\" >{tmp_path / 'args'}\ncat >{tmp_path / 'mail'}\n")
    sendmail.chmod(0o755)
    monkeypatch.setenv("PATH", f"{sendmail.parent}:/usr/bin:/bin")
    configure(home, email="ops@example.com")
    tool.send({"app": "shop", "event": "backup_failed", "reason": "disk full"}, now=0.0)
    assert (tmp_path / "args").read_text() == "-t -oi\n"
    headers, body = (tmp_path / "mail").read_text().split("\n\n", 1)
    assert "To: ops@example.com" in headers and "Subject: djangohost: backup_failed of shop on web1" in headers
    assert json.loads(body)["reason"] == "disk full"


def test_restarts_are_counted_from_supervisors_log_within_the_hour():
    now = time.mktime(time.strptime("2026-12-08 12:00:00", "%Y-%m-%d %H:%M:%S"))
    lines = ["2026-12-08 10:30:00,001 INFO exited: shop (terminated by SIGKILL; not expected)",  # too old
             *[f"2026-12-08 11:{minute}:00,001 INFO exited: shop (terminated by SIGKILL; not expected)"
               for minute in ("10", "20", "30", "40")],
             "2026-12-08 11:50:00,001 INFO exited: shop (exit status 0; expected)",
             "2026-12-08 11:50:00,001 INFO exited: shop2 (terminated by SIGKILL; not expected)",
             "2026-12-08 11:51:00,001 INFO spawned: 'shop' with pid 42"]
    assert tool.restarts("shop", lines, now) == 4


def test_a_problem_is_alerted_once_then_again_after_a_while(home, receiver, monkeypatch):
    configure(home, webhook=SECRET.format(port=receiver.server_port), apps=[{"name": "shop"}])
    monkeypatch.setattr(tool, "problems", lambda settings, now, seen: [{"app": "shop", "event": "gunicorn_restarts"}])
    for now in (0.0, 60.0, tool.REPEAT + 1.0):
        tool.check(tool.config(), now)
    assert len(Receiver.got) == 2


def test_the_setting_is_checked_before_anything_runs_and_its_url_never_shown():
    for bad, why in [({"webhook": "ftp://h/s3cr3t"}, "webhook: must be an http:// or https:// URL"),
                     ({"webhook": "https://h/s3cr3t\nX-Evil: 1"}, "webhook: must be an http:// or https:// URL"),
                     ({"email": "ops at example"}, "email: 'ops at example' must be an e-mail address"),
                     ({"restarts": 0}, "restarts: 0"),
                     ("https://h/s3cr3t", "must be a dict with keys webhook")]:
        with pytest.raises(InventoryError) as error:
            host_settings("web1", {"djangohost_notify": bad})
        assert str(error.value).startswith("host web1, field djangohost_notify: ") and why in str(error.value)
        assert "s3cr3t" not in str(error.value)
    settings = host_settings("web1", {"djangohost_notify": {"webhook": "https://hooks.test/s3cr3t"}})
    assert "s3cr3t" not in repr(settings)
    assert json.loads(notify.config([], settings, "web1"))["webhook"] == "https://hooks.test/s3cr3t"


def test_a_backup_is_late_past_its_period_and_an_hour(home, tmp_path, monkeypatch):
    backup_tool = tmp_path / "djangohost-backup"
    backup_tool.write_text('#!/bin/sh\n[ "$2" = shop ] && echo \'{"name": "b1", "created": 1000}\'\ntrue\n')
    backup_tool.chmod(0o755)
    monkeypatch.setattr(tool, "BACKUP_TOOL", str(backup_tool))
    monkeypatch.setattr(tool, "SUPERVISOR_LOG", tmp_path / "no-log")
    settings = {"apps": [{"name": "shop", "backup_period": 3600}, {"name": "new", "backup_period": 3600},
                         {"name": "unscheduled", "backup_period": None}]}
    seen = {"new": 5000.0}
    assert tool.problems(settings, 1000 + 3600 + tool.GRACE, seen) == []
    late = tool.problems(settings, 1001 + 3600 + tool.GRACE, seen)
    assert [(problem["app"], problem["event"]) for problem in late] == [("shop", "backup_late")]
    assert late[0]["reason"] == "no good backup for 120 min (one every 60 min expected)"
    # An app without any backup counts from when the check first saw it.
    assert [problem["app"] for problem in tool.problems(settings, 5001 + 3600 + tool.GRACE, seen)] == ["shop", "new"]
