"""Each fact's process() on output its command printed on real containers (see facts/capture.py),
failure and empty cases included."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import facts
from deploys.model.paths import BACKUP_TOOL, JOBS
from facts.git import GitMirrors, Mirror
from facts.gunicorn import GunicornSocket
from facts.health import AppHealth
from facts.nginx import Nginx
from facts.status import MARK, Status
from facts.supervisor import SupervisorPrograms

SPECS = Path(__file__).parent / "facts"


def output(name: str) -> list[str]:
    return json.loads((SPECS / f"{name}.json").read_text())["output"]


def test_supervisor_running():
    programs = SupervisorPrograms().process(output("supervisor_running"))
    assert set(programs) == {"hello", "goodbye"}
    hello = programs["hello"]
    assert hello["state"] == "RUNNING" and isinstance(hello["pid"], int) and hello["uptime"] >= 0


def test_supervisor_stopped_and_fatal():
    programs = SupervisorPrograms().process(output("supervisor_stopped_and_fatal"))
    assert programs["broken"]["state"] == "FATAL"
    assert programs["broken"]["pid"] is None and "Exited too quickly" in programs["broken"]["description"]
    assert programs["goodbye"]["state"] == "STOPPED" and programs["goodbye"]["uptime"] is None
    assert programs["hello"]["state"] == "RUNNING"


def test_supervisor_not_running_or_not_installed_is_empty():
    assert SupervisorPrograms().process(output("supervisor_not_running")) == {}
    assert SupervisorPrograms().process(output("supervisor_not_installed")) == {}


def test_supervisor_uptime_in_days():
    line = "hello                            RUNNING   pid 12, uptime 3 days, 1:02:03"
    assert SupervisorPrograms().process([line])["hello"]["uptime"] == 3 * 86400 + 3723


def test_socket_accepting():
    socket = GunicornSocket().process(output("socket_accepting"))
    assert socket == {"exists": True, "is_socket": True, "owner": "hello", "group": "hello",
                      "mode": "777", "accepting": True, "error": None}


def test_socket_missing_refusing_and_not_a_socket():
    assert GunicornSocket().process(output("socket_missing")) == GunicornSocket.default()
    refusing = GunicornSocket().process(output("socket_refusing"))
    assert refusing["is_socket"] and not refusing["accepting"]
    assert refusing["error"] == "Connection refused"
    regular = GunicornSocket().process(output("socket_not_a_socket"))
    assert regular["exists"] and not regular["is_socket"] and not regular["accepting"]


def test_nginx_valid_with_sites():
    nginx = Nginx().process(output("nginx_valid"))
    assert nginx["valid"] and nginx["error"] is None
    assert nginx["sites"] == {"djangohost-default": ["_"], "goodbye": ["goodbye.test"],
                              "hello": ["hello.test"]}


def test_nginx_invalid_carries_the_error():
    nginx = Nginx().process(output("nginx_invalid"))
    assert not nginx["valid"]
    assert 'unknown directive "bogus_directive"' in nginx["error"]
    assert nginx["sites"]["broken"] == ["broken.test"]


def test_nginx_not_installed():
    assert Nginx().process(output("nginx_not_installed")) == Nginx.default()


def test_health():
    assert AppHealth().process(output("health_ok")) == {"hello.test": 200}
    assert AppHealth().process(output("health_mixed")) == {"hello.test": 404, "unknown.test": 0}
    assert AppHealth().process(output("health_no_nginx")) == {}
    assert AppHealth().process(["garbage"]) == {}


def test_status_splits_sections_for_each_fact():
    stat, answer = output("socket_accepting")
    backup = {"app": "hello", "name": "20261123T031700-scheduled", "created": 1795403820}
    lines = [f"{MARK} supervisor", *output("supervisor_running"),
             f"{MARK} nginx", *output("nginx_valid"),
             f"{MARK} backups", "1795431000", json.dumps(backup),
             f"{MARK} socket hello", stat,
             f"{MARK} socket goodbye", *output("socket_missing"),
             f"{MARK} accept hello", answer,
             f"{MARK} health hello", *output("health_ok"),
             f"{MARK} accept goodbye", "refusing No such file or directory",
             f"{MARK} health goodbye"]
    status = Status().process(lines)
    assert status["nginx"]["valid"]
    assert status["apps"]["hello"]["program"]["state"] == "RUNNING"
    assert status["apps"]["hello"]["socket"]["accepting"]
    assert status["apps"]["hello"]["health"] == {"hello.test": 200}
    assert status["apps"]["hello"]["backups"] == {"now": 1795431000, "backups": [backup]}
    assert not status["apps"]["goodbye"]["socket"]["exists"]
    assert status["apps"]["goodbye"]["health"] == {}
    assert status["apps"]["goodbye"]["backups"] == {"now": 1795431000, "backups": []}


def test_status_checks_every_app_from_one_python(tmp_path):
    """The script runs here for real: each app gets its sections, though nothing answers."""
    apps = [(f"app{i}", str(tmp_path / f"app{i}.sock"), [f"app{i}.test"], "/") for i in range(3)]
    run = subprocess.run(["sh", "-c", Status().command(apps, BACKUP_TOOL, JOBS)], capture_output=True, text=True,
                         check=True)
    status = Status().process(run.stdout.splitlines())
    assert sorted(status["apps"]) == ["app0", "app1", "app2"]
    for name, app in status["apps"].items():
        assert not app["socket"]["exists"]
        assert list(app["health"]) == [f"{name}.test"]


def test_root_connects_to_an_apps_socket_never_through_a_link(tmp_path):
    """Run for real: the socket itself accepts; a link to it in the app's run/ (which could lead to
    another app's socket, or a root-only one) is refused before root connects anywhere."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "real.sock"))
    server.listen(8)
    (tmp_path / "linked.sock").symlink_to(tmp_path / "real.sock")
    try:
        for path, expected in (("real.sock", "accepting"), ("linked.sock", "refusing not a socket")):
            run = subprocess.run(["sh", "-c", GunicornSocket().command(str(tmp_path / path))], capture_output=True,
                                 text=True, check=True)
            assert run.stdout.splitlines()[-1] == expected, run.stdout
        apps = [("real", str(tmp_path / "real.sock"), [], "/"), ("linked", str(tmp_path / "linked.sock"), [], "/")]
        run = subprocess.run(["sh", "-c", Status().command(apps, BACKUP_TOOL, JOBS)], capture_output=True, text=True,
                             check=True)
        status = Status().process(run.stdout.splitlines())
        assert status["apps"]["real"]["socket"]["accepting"]
        assert status["apps"]["linked"]["socket"]["error"] == "not a socket"
    finally:
        server.close()


def test_fact_commands_are_valid_sh():
    commands = [SupervisorPrograms().command(), Nginx().command(),
                GunicornSocket().command("/webapps/a b/run/gunicorn.sock"),
                AppHealth().command(["hello.test"], "/"),
                Status().command([("hello", "/webapps/hello/run/gunicorn.sock", ["hello.test"], "/")], BACKUP_TOOL,
                                 JOBS)]
    for command in commands:
        subprocess.run(["sh", "-n", "-c", command], check=True)


def test_git_mirrors():
    url = "ssh://git@git.test/shop.git"
    mirrors = GitMirrors().process([
        f"shop\tok\t{url}\t8e67ff55a4d4e0c1\trequirements\t9f86d081884c7d65\tdjango,gunicorn",
        f"news\tok\t{url}\t5e67ff55a4d4e0c1",
        f"blog\tnoref\t{url}\tref v9 not found in the repository",
        f"wiki\terror\t{url}\tgit@git.test: Permission denied (publickey). fatal: Could not read from remote",
    ])
    assert mirrors["shop"] == Mirror(url, commit="8e67ff55a4d4e0c1", dependencies="9f86d081884c7d65",
                                     names=("django", "gunicorn"))
    # Fetched on a host without djangohost's program yet: its build finds the dependencies.
    assert mirrors["news"] == Mirror(url, commit="5e67ff55a4d4e0c1", dependencies=None)
    assert mirrors["blog"].ref_missing and not mirrors["blog"].commit
    assert not mirrors["wiki"].ref_missing and "Permission denied" in mirrors["wiki"].error
    command = GitMirrors().command(apps=[("shop", "_shop", "/var/lib/djangohost/build/shop", "main", "src",
                                          "requirements.txt")], program="/usr/local/lib/djangohost/dependencies.py")
    assert "runuser -u _shop -- env HOME=/var/lib/djangohost/build/shop sh -c" in command
    assert "sed 's/^/shop\\t/'" in command  # reported by the app's name


def test_the_status_of_many_apps_fits_in_one_command():
    """The status script is one argument of `sh -c` (docker exec, SSH): the kernel refuses one
    longer than 128 KiB. The checks' Python is in it once, not once per app."""
    apps = [(f"app{i}", f"/webapps/app{i}/run/gunicorn.sock", [f"https://app{i}.test", f"https://www.app{i}.test"], "/")
            for i in range(100)]
    command = Status().command(apps, BACKUP_TOOL, JOBS)
    assert len(command.encode()) < 128 * 1024
    # It still runs: sh parses it.
    subprocess.run(["sh", "-n", "-c", command], check=True)


def test_a_piped_facts_program_is_read_whole_before_it_runs():
    """facts.read sends a program on stdin: a command of it (psql, run as postgres) that reads its
    standard input gets nothing, and cannot take or add lines of root's program."""
    program = "read line; echo \"read: $line\"\necho after\n"
    run = subprocess.run(["sh", "-c", facts.PIPED], input=program, capture_output=True, text=True, check=True)
    assert run.stdout.splitlines() == ["read: ", "after"]
