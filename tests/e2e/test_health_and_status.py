"""Facts that see what runs, the health gate after a deploy, and the status view."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO, http_get, master_pid, pyinfra, sh, wait_for, write_inventory

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(deploy_examples):
    return deploy_examples("health", {"hello": {}, "goodbye": {}})


def status_lines(inventory) -> dict[str, str]:
    run = pyinfra(inventory, deploy="deploys/status.py")
    assert run.changed() == []
    return {m.group(1): line for line in run.output.splitlines()
            if (m := re.match(r"^  (\w+)\s+", line))}


def fact(container: str, *args: str) -> object:
    """A fact's value as `pyinfra @docker/C fact ...` prints it."""
    proc = subprocess.run([sys.executable, "-m", "pyinfra", f"@docker/{container}", "fact", *args],
                          cwd=REPO, capture_output=True, text=True, check=True)
    out = proc.stdout + proc.stderr
    document = out[out.index("{", out.index("--> Fact data for")):]
    return json.JSONDecoder().raw_decode(document)[0][f"@docker/{container}"]


def test_status_of_a_healthy_host(deployed):
    lines = status_lines(deployed["inventory"])
    for app in ("hello", "goodbye"):
        pid = master_pid(deployed["container"], app)
        assert re.search(rf"RUNNING +pid {pid} +up \d+:\d\d:\d\d +socket accepting +{app}.test=200 +backup NONE "
                         r"\(WARNING: no good backup yet\)$",
                         lines[app]), lines[app]


def test_facts_match_what_a_shell_sees(deployed):
    container = deployed["container"]
    programs = fact(container, "facts.supervisor.SupervisorPrograms")
    shell = dict(line.split()[:2] for line in sh(container, "supervisorctl status").splitlines())
    assert {name: p["state"] for name, p in programs.items()} == shell
    assert programs["hello"]["pid"] == master_pid(container, "hello")

    socket = fact(container, "facts.gunicorn.GunicornSocket", "path=/webapps/hello/run/gunicorn.sock")
    kind, owner, group, mode = sh(container, "stat -c '%F|%U|%G|%a' /webapps/hello/run/gunicorn.sock").split("|")
    assert (kind, socket["owner"], socket["group"], socket["mode"]) == ("socket", owner, group, mode)
    assert socket["accepting"] and socket["is_socket"]

    nginx = fact(container, "facts.nginx.Nginx")
    assert nginx["valid"] == (subprocess.run(["docker", "exec", container, "nginx", "-t"],
                                             capture_output=True).returncode == 0)
    assert sorted(nginx["sites"]) == sorted(sh(container, "ls /etc/nginx/sites-enabled").split())
    assert nginx["sites"]["hello"] == ["hello.test"]

    health = fact(container, "facts.health.AppHealth", "domains=hello.test,unknown.test", "path=/")
    curl = sh(container, "curl -s -o /dev/null -w '%{http_code}' -H 'Host: hello.test' http://127.0.0.1/")
    assert health == {"hello.test": int(curl), "unknown.test": 0}


def test_supervisor_brings_back_a_killed_gunicorn(deployed):
    container = deployed["container"]
    old = master_pid(container, "hello")
    sh(container, f"kill -9 {old}")
    new = wait_for(lambda: sh(container, "supervisorctl pid hello", check=False).isdigit()
                   and int(sh(container, "supervisorctl pid hello")) not in (0, old)
                   and sh(container, "supervisorctl status hello").split()[1] == "RUNNING"
                   and int(sh(container, "supervisorctl pid hello")))
    wait_for(lambda: http_get(deployed["port"], "hello.test")[0] == 200)
    assert f"pid {new} " in status_lines(deployed["inventory"])["hello"]


def test_an_app_that_cannot_import_is_refused_and_the_other_keeps_serving(deployed):
    container, port = deployed["container"], deployed["port"]
    goodbye_pid = master_pid(container, "goodbye")
    hello_page = http_get(port, "hello.test")[1]
    # wsgi.py is imported by Gunicorn only: migrate and collectstatic pass, starting fails.
    wsgi = deployed["workdir"] / "hello" / "hello" / "wsgi.py"
    good = wsgi.read_text()
    wsgi.write_text(good + "\nraise RuntimeError('hello is broken on purpose')\n")
    try:
        run = pyinfra(deployed["inventory"], check=False)
    finally:
        wsgi.write_text(good)
    assert run.returncode != 0
    assert "the new release of hello is refused, the live one keeps serving" in run.output
    assert "RuntimeError: hello is broken on purpose" in run.output
    assert http_get(port, "hello.test")[1].split("Visits")[0] == hello_page.split("Visits")[0]
    assert http_get(port, "goodbye.test")[0] == 200 and master_pid(container, "goodbye") == goodbye_pid


def test_an_app_failing_through_nginx_fails_the_gate_with_its_log_and_is_rolled_back(deployed):
    """What only the live path shows (here: the view fails behind Nginx, which sets X-Real-IP)
    is caught by the health gate through Nginx, which links the previous release back."""
    container, port = deployed["container"], deployed["port"]
    goodbye_pid = master_pid(container, "goodbye")
    live = sh(container, "readlink /webapps/hello/current")
    views = deployed["workdir"] / "hello" / "hello" / "views.py"
    good = views.read_text()
    apps = [dict(app, health_timeout=5) for app in deployed["apps"]]
    inventory = write_inventory(deployed["workdir"] / "short-timeout.py", container, apps)
    views.write_text(good.replace("def home(request):\n", "def home(request):\n    if 'HTTP_X_REAL_IP' in "
                                  "request.META:\n        raise RuntimeError('hello fails behind Nginx')\n"))
    try:
        run = pyinfra(inventory, check=False)
        assert run.returncode != 0
        assert "app hello is not healthy through Nginx: http://hello.test/ answered 500" in run.output
        assert f"rolled back to {live}, which serves again" in run.output
        assert "--- the end of /webapps/hello/logs/gunicorn.log:\n" in run.output
        assert "RuntimeError: hello fails behind Nginx" in run.output  # from the app's log
        assert sh(container, "readlink /webapps/hello/current") == live
        assert http_get(port, "hello.test")[0] == 200
        assert http_get(port, "goodbye.test")[0] == 200 and master_pid(container, "goodbye") == goodbye_pid
        # The same again: the release that failed is not linked again, and says so.
        hello_pid = master_pid(container, "hello")
        again = pyinfra(inventory, check=False)
        assert again.returncode != 0
        assert re.search(r"djangohost: app hello: release \S+ failed its health gate before, with the same code, "
                         r"virtualenv, settings and environment; it is not linked again until one of them changes",
                         again.output), again.output[-3000:]
        assert "is not healthy" not in again.output
        assert sh(container, "readlink /webapps/hello/current") == live and master_pid(container, "hello") == hello_pid
    finally:
        views.write_text(good)
    run = pyinfra(inventory)
    assert http_get(port, "hello.test")[0] == 200
    assert pyinfra(inventory).changed() == []
