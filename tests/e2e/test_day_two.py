"""Day two, as a user sees it, on a server reached over SSH as a sudo user (Debian 12): an app's
logs (a request's access line and what the app printed, labelled; since; process; follow until
Ctrl-C), a management command run as the app (its output, its status; a failing one fails the
run), and `manage shell` in a real terminal through scripts/djangohost-shell, as the app's user.
What the app writes reaches the operator's terminal escaped; hostile --data values are refused or
reach manage.py as words, never a shell."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests import targets
from tests.helpers import REPO, copy_example, http_get, pyinfra, sh, wait_for, write_inventory

pytestmark = pytest.mark.e2e

# A view that prints what it is told to standard error (Gunicorn's log), as apps do.
SHOUT_VIEW = '''

def shout(request):
    import sys
    print(f"shout: {request.GET.get('say', '')}", file=sys.stderr, flush=True)
    return HttpResponse("shouted")
'''
# A process that writes a line every second, to filter on.
TICKER = "sh -c 'while true; do echo tick; sleep 1; done'"
# The logs program, as `ps` shows it on the host.
FOLLOWER = "[m]anaged by djangohost: the last lines of an app"


@pytest.fixture(scope="module")
def site(container_factory, login, tmp_path_factory):
    container = container_factory(ssh=True)
    workdir = tmp_path_factory.mktemp("daytwo")
    source = copy_example("hello", workdir)
    views, urls = source / "hello" / "views.py", source / "hello" / "urls.py"
    views.write_text(views.read_text() + SHOUT_VIEW)
    urls.write_text(urls.read_text().replace("import home", "import home, shout")
                    .replace("    path('', home),", "    path('', home),\n    path('shout/', shout),"))
    apps = [{"name": "hello", "domains": ["hello.test"], "source": str(source), "processes": {"ticker": TICKER}}]
    inventory = write_inventory(workdir / "inventory.py", container, apps, login(container, targets.SSH_USER))
    pyinfra(inventory)
    return {"container": container, "port": targets.published_port(container, 80), "inventory": inventory}


def shout(site, say: str) -> None:
    assert http_get(site["port"], "hello.test", f"/shout/?say={say}") == (200, "shouted")


def logs(site, *data: str, check: bool = True):
    args = [arg for value in ("app=hello", *data) for arg in ("--data", value)]
    return pyinfra(site["inventory"], *args, deploy="deploys/logs.py", check=check, json_results=False)


def manage(site, command: str, check: bool = True):
    return pyinfra(site["inventory"], "--data", "app=hello", "--data", f"command={command}",
                   deploy="deploys/manage.py", check=check, json_results=False)


def test_logs_show_a_requests_access_line_and_what_the_app_printed_labelled(site):
    marker = uuid.uuid4().hex[:8]
    shout(site, marker)
    output = logs(site).output
    assert re.search(rf"^nginx-access +\S+ - - \[.*\] \"GET /shout/\?say={marker} HTTP/1.1\" 200 ", output, re.M)
    assert re.search(rf"^web +shout: {marker}$", output, re.M), output[-3000:]
    assert re.search(r"^ticker +tick$", output, re.M)


def test_what_the_app_logs_reaches_the_terminal_escaped(site):
    # The app prints an escape sequence that would set the operator's terminal title, and one that
    # colours it; both arrive as text.
    shout(site, "%1b]0;pwned%07%1b[31mred")
    raw = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(site["inventory"]), "deploys/logs.py",
                          "--data", "app=hello", "--data", "process=web"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "shout: \\x1b]0;pwned\\x07\\x1b[31mred" in raw
    assert "\x1b]0" not in raw and "\x07" not in raw and "\x1b[31mred" not in raw


def test_since_leaves_out_an_older_line(site):
    container = site["container"]
    old, new = f"old-{uuid.uuid4().hex[:6]}", f"new-{uuid.uuid4().hex[:6]}"
    shout(site, old)
    time.sleep(1.5)
    since = sh(container, "date -u +%Y-%m-%dT%H:%M:%S+00:00")
    time.sleep(1.5)
    shout(site, new)
    output = logs(site, f"since={since}", "process=nginx").output
    assert new in output and old not in output
    assert old in logs(site, "since=10m", "process=nginx").output


def test_process_and_lines_choose_what_is_shown(site):
    output = logs(site, "process=ticker", "lines=5").output
    assert re.findall(r"^(\S+) +tick$", output, re.M) == ["ticker"] * 5
    assert not re.search(r"^(web|nginx-access) ", output, re.M)
    nginx = logs(site, "process=nginx").output
    assert re.search(r"^nginx-access ", nginx, re.M) and not re.search(r"^(web|ticker) ", nginx, re.M)


@pytest.mark.parametrize("value, message", [
    ("app=nope", "--data app: no app named nope in the inventory (apps: hello)"),
    ("process=web;id", "--data process: 'web;id' is not a log of hello (logs: "),
    ("lines=0", "--data lines: '0' must be a whole number from 1 to 10000"),
    ("lines=$(id)", "--data lines: '$(id)' must be a whole number from 1 to 10000"),
    ("since=$(touch /tmp/pwned)", "--data since: '$(touch /tmp/pwned)' is not a time"),
])
def test_a_bad_value_names_its_field_and_nothing_runs(site, value, message):
    run = pyinfra(site["inventory"], "--data", "app=hello", "--data", value, deploy="deploys/logs.py", check=False,
                  json_results=False)
    assert run.returncode != 0 and message in run.output, run.output[-2000:]
    assert "Starting operation" not in run.output
    assert sh(site["container"], "ls /tmp/pwned 2>&1", check=False).endswith("No such file or directory")


def test_follow_prints_new_lines_until_interrupted_and_leaves_nothing_running(site):
    container, marker = site["container"], uuid.uuid4().hex[:8]
    follower = subprocess.Popen(
        [sys.executable, "-m", "pyinfra", "-y", str(site["inventory"]), "deploys/logs.py", "--data", "app=hello",
         "--data", "follow=yes", "--data", "process=web", "--data", "lines=1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen = Reader(follower)
    try:
        wait_for(lambda: sh(container, f"pgrep -f '{FOLLOWER}'", check=False), timeout=30)
        shout(site, marker)
        assert wait_for(lambda: re.search(rf"\[{container}\] web +shout: {marker}", seen.text()), timeout=15)
        os.killpg(follower.pid, signal.SIGINT)  # Ctrl-C in the operator's terminal
        follower.wait(timeout=20)
    finally:
        if follower.poll() is None:
            os.killpg(follower.pid, signal.SIGKILL)
    assert wait_for(lambda: not sh(container, f"pgrep -f '{FOLLOWER}'", check=False), timeout=10)


class Reader:
    """What a running process printed so far."""

    def __init__(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        self.stream, self.buffer = process.stdout, b""

    def text(self) -> str:
        while select.select([self.stream], [], [], 0)[0]:
            chunk = os.read(self.stream.fileno(), 65536)
            if not chunk:
                break
            self.buffer += chunk
        return re.sub(r"\x1b\[[0-9;]*m", "", self.buffer.decode(errors="replace"))


def test_manage_runs_a_command_as_the_app_and_shows_its_output(site):
    plan = manage(site, "migrate --plan").output
    assert "Planned operations:" in plan and "hello: manage migrate --plan: exit status 0" in plan
    assert "System check identified no issues" in manage(site, "check").output
    uid = sh(site["container"], "id -u hello")
    assert re.search(rf": {uid}$", manage(site, 'shell -c "import os; print(os.getuid())"').output, re.M)


def test_a_failing_command_fails_the_run_with_its_status(site):
    run = manage(site, "nosuchcommand", check=False)
    assert run.returncode != 0
    assert "Unknown command: 'nosuchcommand'" in run.output
    assert "hello: manage nosuchcommand FAILED: exit status 1" in run.output


def test_a_hostile_command_reaches_manage_as_words_never_a_shell(site):
    container = site["container"]
    for command in ("check; touch /tmp/pwned", "check $(touch /tmp/pwned)", "check `touch /tmp/pwned`"):
        run = manage(site, command, check=False)
        assert run.returncode != 0 and "FAILED: exit status" in run.output, run.output[-2000:]
    assert sh(container, "ls /tmp/pwned 2>&1", check=False).endswith("No such file or directory")


def test_the_shell_runs_in_a_terminal_as_the_app(site):
    uid = sh(site["container"], "id -u hello")
    main, terminal = os.openpty()
    shell = subprocess.Popen([sys.executable, "scripts/djangohost-shell", str(site["inventory"]), "hello"],
                             cwd=REPO, stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
    os.close(terminal)
    try:
        typed = Typist(main)
        typed.until(">>> ")
        typed.line("print(1+1)")
        assert "2" in [line.strip() for line in typed.until(">>> ").splitlines()]
        typed.line("import os, sys; print('as', os.getuid(), sys.stdin.isatty())")
        assert f"as {uid} True" in typed.until(">>> ")
        typed.line("exit()")
        assert shell.wait(timeout=20) == 0
    finally:
        if shell.poll() is None:
            shell.kill()
        os.close(main)


class Typist:
    """Types into a terminal and reads what it shows."""

    def __init__(self, fd: int) -> None:
        self.fd, self.shown = fd, ""

    def line(self, text: str) -> None:
        os.write(self.fd, f"{text}\n".encode())

    def until(self, wanted: str, timeout: float = 60) -> str:
        """What the terminal showed up to `wanted` (which is consumed)."""
        deadline = time.monotonic() + timeout
        while wanted not in self.shown:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {wanted!r} after {timeout} s: {self.shown[-2000:]!r}")
            if select.select([self.fd], [], [], 0.5)[0]:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the terminal closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the terminal closed before {wanted!r}: {self.shown[-2000:]!r}")
                self.shown += chunk.decode(errors="replace")
        before, _, self.shown = self.shown.partition(wanted)
        return before


def test_the_shell_command_line_for_this_inventory(site):
    printed = subprocess.run([sys.executable, "scripts/djangohost-shell", "--print", str(site["inventory"]), "hello",
                              "dbshell"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert printed.startswith("ssh -t -p ") and "sudo -H -- /webapps/hello/bin/manage dbshell" in printed
    assert Path(REPO / "scripts/djangohost-shell").stat().st_mode & 0o111
