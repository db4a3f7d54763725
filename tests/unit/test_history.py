"""The history: djangohost-history run here (an entry appended whole, bounded, root's alone, a
hostile reason kept inside its entry), the outcome a run records, and how the views show it."""

from __future__ import annotations

import io
import json
import stat
import subprocess

import pytest

from deploys.components import history
from deploys.model.programs import program

tool = program("history/djangohost-history.py")


@pytest.fixture
def histories(tmp_path, monkeypatch):
    monkeypatch.setattr(tool, "HISTORY", tmp_path / "history")
    monkeypatch.setattr(tool, "NOTIFY_TOOL", str(tmp_path / "no-notifier"))
    return tmp_path / "history"


def record(monkeypatch, app: str, entry: object) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(entry)))
    code: int = tool.main(["record", app])
    return code


def test_an_entry_is_appended_with_its_time_and_login_in_a_file_of_roots(histories, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "deploy")
    assert record(monkeypatch, "shop", {"command": "site", "result": "deployed", "release": "r1",
                                        "unknown": "dropped", "commit": ""}) == 0
    [entry] = tool.entries("shop")
    assert entry["result"] == "deployed" and entry["release"] == "r1" and entry["login"] == "deploy"
    assert "unknown" not in entry and "commit" not in entry and entry["time"].endswith("Z")
    assert stat.S_IMODE(histories.stat().st_mode) == 0o700
    assert stat.S_IMODE((histories / "shop.jsonl").stat().st_mode) == 0o600


def test_the_history_keeps_only_the_newest_entries(histories, monkeypatch):
    for number in range(tool.KEEP + 25):
        tool.append("shop", {"result": "deployed", "release": str(number)})
    kept = tool.entries("shop")
    assert len(kept) == tool.KEEP
    assert kept[0]["release"] == "25" and kept[-1]["release"] == str(tool.KEEP + 24)
    assert len((histories / "shop.jsonl").read_text().splitlines()) == tool.KEEP
    assert not list(histories.glob("*.new"))


def test_a_hostile_reason_cannot_forge_an_entry_or_reach_a_terminal(histories, monkeypatch):
    forged = json.dumps({"result": "deployed", "release": "forged"})
    reason = f"boom\n{forged}\r\x1b[2J\x1b]0;owned\x07\u2028{forged}"
    assert record(monkeypatch, "shop", {"command": "site", "result": "refused", "reason": reason}) == 0
    text = (histories / "shop.jsonl").read_text()
    assert len(text.splitlines()) == 1 and text.isascii() and "\x1b" not in text
    [entry] = tool.entries("shop")
    assert entry["reason"] == reason  # kept as it was, inside its own entry
    shown = history.line(entry)
    assert "\x1b" not in shown and "\n" not in shown and "\r" not in shown and "\u2028" not in shown
    assert "\\x1b[2J" in shown and "\\n" in shown


@pytest.mark.parametrize(("app", "entry", "why"), [
    ("../etc", {"result": "deployed"}, "is not an app name"),
    ("shop", {"result": "owned"}, "result must be one of"),
    ("shop", ["deployed"], "not a JSON object"),
])
def test_what_is_not_an_entry_is_refused(histories, monkeypatch, capsys, app, entry, why):
    assert record(monkeypatch, app, entry) == 2
    assert why in capsys.readouterr().err
    assert not list(histories.glob("*.jsonl")) if histories.exists() else True


def test_a_failure_tells_the_notifier(histories, monkeypatch, tmp_path):
    notifier = tmp_path / "notify"
    notifier.write_text(f"#!/bin/sh\ncat >{tmp_path / 'told'}\n")
    notifier.chmod(0o755)
    monkeypatch.setattr(tool, "NOTIFY_TOOL", str(notifier))
    record(monkeypatch, "shop", {"result": "deployed"})
    assert not (tmp_path / "told").exists()
    record(monkeypatch, "shop", {"result": "rolled_back", "reason": "not healthy"})
    assert json.loads((tmp_path / "told").read_text()) == {
        "app": "shop", "event": "health_gate_rolled_back", "reason": "not healthy"}


def test_the_record_hands_whatever_the_entry_holds_to_the_program_on_its_input(tmp_path, monkeypatch):
    received, planted = tmp_path / "received", tmp_path / "owned"
    fake = tmp_path / "djangohost-history"
    fake.write_text(f'#!/bin/sh\necho "$@" >{received}.args\ncat >{received}\n')
    fake.chmod(0o755)
    monkeypatch.setattr(history, "TOOL", str(fake))
    reason = f"'; touch {planted}; echo '$(touch {planted})`touch {planted}`\\n\n%s\x1b"

    class App:
        name = "shop"

    entry = {"result": "failed", "reason": reason * 30_000}  # past the 128 KiB of one argument
    subprocess.run(history.record_command(App()), input=history.record_input(entry), text=True, check=True)
    assert json.loads(received.read_text())["reason"] == entry["reason"]
    assert (tmp_path / "received.args").read_text() == "record shop\n"
    assert not planted.exists()


class Done:
    """An operation that ran: failed or not, with what it printed."""

    def __init__(self, failed: bool, stderr: list[str] = ()) -> None:
        self.failed, self.stderr_lines, self.stdout_lines = failed, list(stderr), []

    def is_complete(self) -> bool:
        return True

    def did_error(self) -> bool:
        return self.failed


@pytest.mark.parametrize(("step", "said", "expected"), [
    ("Django app | shop: candidate check passed",
     ["djangohost: the new release of shop is refused, the live one keeps serving: it answered 500", "Traceback",
      "  File x", "RuntimeError: boom"],
     {"result": "refused", "reason": "djangohost: the new release of shop is refused, the live one keeps serving: it "
                                     "answered 500\nTraceback\n  File x\nRuntimeError: boom"}),
    ("Health gate | shop: health gate",
     ["djangohost: app shop is not healthy through Nginx: http://shop.test/ answered 500; rolled back to "
      "releases/r1, which serves again"],
     {"result": "rolled_back", "by": "health gate"}),
    ("Databases | shop: migrate", ["django.db.utils.ProgrammingError: nope"],
     {"result": "failed", "reason": "django.db.utils.ProgrammingError: nope"}),
])
def test_the_outcome_names_the_step_that_failed_and_why(step, said, expected):
    from deploys.engine.ops import Guard

    guard = Guard("shop")
    failed = Done(True, said)
    guard.watch(failed)  # type: ignore[arg-type]
    found = history.outcome(guard, [("Django app | shop: release", Done(False)), (step, failed)])  # type: ignore[list-item]
    assert found["step"] == step and {**found, **expected} == found
