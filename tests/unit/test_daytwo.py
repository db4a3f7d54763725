"""The day-two commands' parts, run here: the logs program shipped to hosts (its times, its merge,
its escaping, its refusals, its follow mode), the checks of `--data` values, where each log is,
the one-off command's wrapper, and the shell's command line."""

from __future__ import annotations

import configparser
import os
import select
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploys import daytwo
from deploys.components import notify
from deploys.components.nginx import site_conf
from deploys.components.supervisor import program_file
from deploys.daytwo import remote, shell
from deploys.daytwo.remote import exit_status, wrapped
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import InventoryError, host_settings
from deploys.model.programs import TEMPLATES
from facts.logs import AppLogs, LogLine, logs_command
from tests.helpers import EXAMPLES, load_apps, load_topology

logs = daytwo.logs_program
SAFE = str(TEMPLATES / "engine" / "djangohost-safe.py")
NOW = datetime(2026, 12, 8, 1, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def shop():
    (app,) = load_apps("web1", {"apps": [{
        "name": "shop", "domains": ["shop.test"], "source": str(EXAMPLES / "hello"),
        "processes": {"worker": "celery -A shop worker", "beat": "celery -A shop beat"},
        "schedule": [{"name": "report", "command": "manage report", "cron": "*/15 * * * *"}],
    }]})
    return app


def run_program(tmp_path: Path, files: dict[str, str], lines: int = 100, since: str | None = None) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    spec = {"logs": [[name, str(tmp_path / name)] for name in files], "lines": lines, "since": since,
            "follow": False}
    done = subprocess.run(["sh", "-c", logs_command(SAFE, spec["logs"], lines, since)],
                          capture_output=True, text=True, check=True)
    return AppLogs().process(done.stdout.splitlines())


def test_since_takes_durations_and_iso_times():
    assert logs.parse_since("10m", NOW) == NOW - 600
    assert logs.parse_since("2h", NOW) == NOW - 7200 and logs.parse_since("1d", NOW) == NOW - 86400
    assert logs.parse_since("2026-12-08T01:00:00Z", NOW) == NOW - 1800
    assert logs.parse_since("2026-12-08 02:00:00+01:00", NOW) == NOW - 1800
    for bad in ("10", "m", "-5m", "10y", "yesterday", "$(id)", "2026-13-01"):
        with pytest.raises(ValueError, match="is not a time"):
            logs.parse_since(bad, NOW)


@pytest.mark.parametrize("line, expected", [
    ("[2026-12-08 01:30:00 +0000] [42] [INFO] Booting worker with pid: 42", "2026-12-08T01:30:00+00:00"),
    ('127.0.0.1 - - [08/Dec/2026:01:30:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl"', "2026-12-08T01:30:00+00:00"),
    ("2026-12-08T02:30:00+01:00 [report] started: manage report", "2026-12-08T01:30:00+00:00"),
    ("[2026-12-08 01:30:00,123: INFO/MainProcess] Task done", "2026-12-08T01:30:00"),
    ("2026/12/08 01:30:00 [error] 7#7: *1 connect() failed", "2026-12-08T01:30:00"),
])
def test_a_lines_time_is_read_from_what_each_program_writes(line, expected):
    assert logs.line_time(line) == datetime.fromisoformat(expected).timestamp()


def test_a_date_far_into_a_line_is_the_apps_text_not_its_time():
    assert logs.line_time("shout: " + "x" * 80 + " 2026-12-08T01:30:00Z") is None


def test_the_last_lines_of_all_logs_merged_by_time_each_in_its_order(tmp_path):
    found = run_program(tmp_path, {
        "web": "[2026-12-08 01:00:00 +0000] [1] [INFO] Booting\nprinted by the app\n"
               "[2026-12-08 01:20:00 +0000] [1] [INFO] later\n",
        "nginx-access": '::1 - - [08/Dec/2026:01:10:00 +0000] "GET /a" 200\n'
                        '::1 - - [08/Dec/2026:01:05:00 +0000] "GET /slow" 200\n',
    })
    assert [(line.log, line.text[:30]) for line in found] == [
        ("web", "[2026-12-08 01:00:00 +0000] [1"),
        ("nginx-access", '::1 - - [08/Dec/2026:01:10:00 '),
        ("nginx-access", '::1 - - [08/Dec/2026:01:05:00 '),  # written when it ended: its log's order kept
        ("web", "printed by the app"),  # untimed: the time of the next line that has one
        ("web", "[2026-12-08 01:20:00 +0000] [1"),
    ]
    assert [line.log for line in run_program(tmp_path, {"web": (tmp_path / "web").read_text()}, lines=2)] == \
        ["web", "web"]


def test_since_leaves_out_older_lines_and_keeps_untimed_recent_ones(tmp_path):
    found = run_program(tmp_path, {
        "web": "[2026-12-08 01:00:00 +0000] [1] [INFO] old\n[2026-12-08 01:20:00 +0000] [1] [INFO] new\n"
               "printed at the end\n",
    }, since="2026-12-08T01:10:00+00:00")
    assert [line.text[-14:] for line in found] == ["[1] [INFO] new", "printed at the end"[-14:]]


def test_every_control_character_of_the_apps_text_is_escaped(tmp_path):
    (text,) = [line.text for line in run_program(tmp_path, {"web": "red \x1b[31m bell \x07 \x9b2J tab\t\u202e\n"})]
    assert text == "red \\x1b[31m bell \\x07 \\x9b2J tab\\t\\u202e"
    assert (tmp_path / "bad").write_bytes(b"\xff\xfe not utf-8 \x1b]0;title\x07\n")
    spec = [["bad", str(tmp_path / "bad")]]
    done = subprocess.run(["sh", "-c", logs_command(SAFE, spec, 10)], capture_output=True, check=True)
    assert b"\x1b" not in done.stdout and b"\\xff\\xfe not utf-8 \\x1b]0;title\\x07" in done.stdout


def test_root_reads_no_link_hard_link_fifo_or_missing_log(tmp_path):
    (tmp_path / "secret").write_text("root's secret\n")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    os.link(tmp_path / "secret", tmp_path / "hard")  # www-data may link in the Nginx logs it writes
    os.mkfifo(tmp_path / "fifo")  # would block a reader that opened it
    spec = [["link", str(tmp_path / "link")], ["hard", str(tmp_path / "hard")], ["fifo", str(tmp_path / "fifo")],
            ["gone", str(tmp_path / "gone")]]
    done = subprocess.run(["sh", "-c", logs_command(SAFE, spec, 10)], capture_output=True, text=True,
                          check=True, timeout=10)
    assert done.stdout == ""


def test_follow_prints_new_lines_through_a_rotation_and_ends_with_its_input(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text("before\n")
    command = logs_command(SAFE, [["worker", str(log)]], 1, follow=True)
    proc = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout and proc.stdin
    try:
        printed = Printed(proc.stdout.fileno())
        assert printed.line() == "worker  before"
        with log.open("a") as file:
            file.write("appended \x1b[2J\n")
        assert printed.line() == "worker  appended \\x1b[2J"
        log.rename(tmp_path / "worker.log.1")  # rotated: a new file at its path
        log.write_text("in the new file\n")
        assert printed.line() == "worker  in the new file"
        proc.stdin.close()  # the session that started it ended
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()


class Printed:
    """The lines a program prints, each waited for at most a few seconds."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer = fd, b""

    def line(self, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            assert time.monotonic() < deadline, f"no line after {timeout} s: {self.buffer!r}"
            if select.select([self.fd], [], [], 0.2)[0]:
                chunk = os.read(self.fd, 4096)
                assert chunk, f"ended: {self.buffer!r}"
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


def test_the_logs_are_where_the_templates_write_them(shop):
    settings = host_settings("web1", {})
    for template, program in (("supervisor/program.conf.j2", "shop"), ("supervisor/processes.conf.j2", "shop-beat")):
        conf = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
        conf.read_string(program_file(shop, settings, template))
        assert conf[f"program:{program}"]["stdout_logfile"] in dict(daytwo.app_logs(shop)).values()
    job = render("schedule/job.j2", app=shop, run=paths.run_script(shop), logs=app_logs_dir(shop),
                 records=paths.job_records(shop), confine="", run_dir=paths.RUN_DIR, notify=notify.TOOL)
    assert paths.job_log(shop, "report").replace("report", "$name") in job
    site = site_conf(shop, http2_on=False)
    for kind in ("access", "error"):
        assert f"{kind}_log {paths.nginx_log(shop, kind)};" in site
    assert [label for label, _ in daytwo.app_logs(shop)] == ["web", "worker", "beat", "job-report", "nginx-access",
                                                          "nginx-error"]


def app_logs_dir(app) -> str:
    return str(Path(paths.process_log(app, "x")).parent)


def test_bad_values_name_their_field(shop):
    assert daytwo.lines(None) == daytwo.DEFAULT_LINES and daytwo.lines("200") == 200 and daytwo.lines(5) == 5
    for bad in (0, -1, "ten", "1;id", 10001, True, 2.5, "²", "١٠"):
        with pytest.raises(InventoryError, match="^--data lines: .* must be a whole number from 1 to 10000"):
            daytwo.lines(bad)
    with pytest.raises(InventoryError, match="^--data since: '\\$\\(id\\)' is not a time"):
        daytwo.since("$(id)")
    with pytest.raises(InventoryError, match="^--data follow: 'maybe': say yes or no"):
        daytwo.switch("follow", "maybe")
    with pytest.raises(InventoryError, match="^--data process: 'web; id' is not a log of shop \\(logs: beat, "):
        daytwo.chosen_logs([shop], "web; id")
    assert daytwo.chosen_logs([shop], "nginx") == {"nginx-access", "nginx-error"}
    assert daytwo.chosen_logs([shop], "worker") == {"worker"}
    with pytest.raises(InventoryError, match="^--data command: name a management command"):
        daytwo.command_words("")
    with pytest.raises(InventoryError, match="^--data command: .* cannot be split into words"):
        daytwo.command_words("shell -c 'unclosed")


def test_a_command_reaches_manage_word_for_word_and_its_status_comes_back(tmp_path):
    manage = tmp_path / "manage"
    manage.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\necho oops >&2\nexit 3\n")
    manage.chmod(0o755)
    words = [str(manage), *daytwo.command_words("migrate --plan 'a b' \"$(touch pwned)\" ;id")]
    done = subprocess.run(["sh", "-c", wrapped(words)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 3 and not (tmp_path / "pwned").exists()
    lines = [("stdout", line) for line in done.stdout.splitlines()] + [("stderr", line)
                                                                      for line in done.stderr.splitlines()]
    assert exit_status(lines) == (3, ["migrate", "--plan", "a b", "$(touch pwned)", ";id", "oops"])


def test_the_shell_reaches_the_primary_server_as_the_inventory_says(tmp_path):
    inventory = tmp_path / "inventory.py"
    app = {"name": "shop", "domains": ["shop.test"], "source": str(EXAMPLES / "hello")}
    inventory.write_text(f"app_servers = [('web1', {{'ssh_hostname': '10.0.0.5', 'ssh_user': 'deploy', "
                         f"'ssh_port': 2222, 'ssh_key': '/k', '_sudo': True, "
                         f"'apps': [{app!r}]}})]\n")
    printed = subprocess.run([sys.executable, "scripts/djangohost-shell", "--print", str(inventory), "shop",
                              "shell", "-c", "print(1)"], capture_output=True, text=True, check=True,
                             cwd=TEMPLATES.parent).stdout.strip()
    *local, remote = shlex.split(printed)
    assert local == ["ssh", "-t", "-p", "2222", "-i", "/k", "--", "deploy@10.0.0.5"]
    # One string the remote shell splits back into the words: none of them is read as shell code.
    assert shlex.split(remote) == ["sudo", "-H", "--", "/webapps/shop/bin/manage", "shell", "-c", "print(1)"]
    refused = subprocess.run([sys.executable, "scripts/djangohost-shell", str(inventory), "nope"],
                             capture_output=True, text=True, cwd=TEMPLATES.parent)
    assert refused.returncode == 1 and "APP: no app named nope" in refused.stderr


def test_a_docker_host_gets_docker_exec_with_a_terminal():
    class Host:
        name, data = "@docker/web1", {}

    assert shell.command_line(Host(), ["/webapps/shop/bin/manage", "dbshell"]) == [
        "docker", "exec", "-it", "--", "web1", "/webapps/shop/bin/manage", "dbshell"]


def test_on_several_servers_logs_come_from_each_and_commands_go_to_the_primary():
    def node(name: str, groups: list[str], **data):
        return SimpleNamespace(name=name, groups=groups, data={"private_address": f"10.0.0.{len(name)}", **data})

    shop = {"name": "shop", "domains": ["shop.test"], "source": str(EXAMPLES / "hello"), "media": False,
            "backup": False, "primary": "app2",
            "processes": {"ticker": {"command": "sleep 1000", "unique": True}, "worker": "sleep 1000"}}
    topology = load_topology([node("lb1", ["lb"]), node("app1", ["app"], apps=[shop]),
                              node("app2", ["app"], apps=[shop]), node("db1", ["db"])])
    name = daytwo.one_app(topology, {"app": "shop"}, "logs")
    assert daytwo.servers(topology, name) == ["app1", "app2"] and daytwo.primary(topology, name) == "app2"
    everywhere = [daytwo.app_on(topology, server, name) for server in ("app1", "app2")]
    # The unique process runs on the primary only: it is a log of the app all the same.
    assert [label for label, _ in daytwo.app_logs(everywhere[0])] == ["web", "worker", "nginx-access", "nginx-error"]
    assert daytwo.chosen_logs(everywhere, "ticker") == {"ticker"}
    with pytest.raises(InventoryError, match="^--data app: logs needs one app"):
        daytwo.one_app(topology, {"app": "shop,other"}, "logs")


def test_the_servers_lines_are_merged_by_time_and_labelled_with_their_server():
    found = {"app1": [LogLine(10.0, "web", "first"), LogLine(30.0, "nginx-access", "third \x1b[31m")],
             "app2": [LogLine(20.0, "worker", "second")]}
    assert remote.shown(found, by_server=True) == [
        "app1  web           first", "app2  worker        second", "app1  nginx-access  third \\x1b[31m"]
    assert remote.shown({"app1": found["app1"]}, by_server=False)[0] == "web           first"
