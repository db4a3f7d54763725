"""ASGI apps (`"server": "asgi"`): examples/chat, a small Channels project, and a copy of it named
lobby, on Debian 12 and on Debian 13 booted with systemd, reached over SSH as the sudo user (the
suite's other SSH targets are test_real_servers'), through Nginx with TLS
(self-signed): WebSockets, a broadcast through the channel layer in the app's own Redis, a stream
whose chunks arrive as they are made, and a redeploy under requests that fails none while the old
workers close their WebSockets (1012) and the other app's stay open.

The clients run inside the target with the app's own Python (tests/wsclient.py: its virtualenv has
the websockets library uvicorn[standard] brings), against the target's Nginx on its loopback; the
request load goes to the published port 443.
"""

from __future__ import annotations

import queue
import re
import shlex
import subprocess
import threading
from pathlib import Path

import pytest

from tests import targets
from tests.helpers import REPO, copy_example, pyinfra, sh, write_inventory
from tests.load import Load

pytestmark = pytest.mark.e2e

ASGI = {"server": "asgi", "broker": True, "database": False, "backup": False, "tls": {"mode": "self-signed"}}
CLIENT = "/root/wsclient.py"
NGINX = "127.0.0.1:443"


def python(app: str) -> str:
    return f"/webapps/{app}/venv/bin/python"


def set_release(project: Path, release: str) -> None:
    consumers = project / "chat" / "consumers.py"
    consumers.write_text(re.sub(r'RELEASE = "[^"]*"', f'RELEASE = "{release}"', consumers.read_text()))


# Debian suite of each target: booted with systemd, reached as the sudo user.
SUITES = {"debian12-systemd-sudo": "bookworm", "debian13-systemd-sudo": "trixie"}


@pytest.fixture(scope="module", params=list(SUITES))
def site(request, container_factory, login, tmp_path_factory):
    container = container_factory(systemd=True, suite=SUITES[request.param], ssh=True, https=True)
    workdir = tmp_path_factory.mktemp(request.param)
    chat = copy_example("chat", workdir)
    lobby = copy_example("chat", workdir / "lobby")
    set_release(lobby, "lobby v1")
    apps = [{"name": "chat", "domains": ["chat.test"], "source": str(chat), **ASGI},
            {"name": "lobby", "domains": ["lobby.test"], "source": str(lobby), **ASGI}]
    inventory = write_inventory(workdir / "inventory.py", container, apps, login(container, targets.SSH_USER))
    first = pyinfra(inventory)
    subprocess.run(["docker", "cp", str(REPO / "tests" / "wsclient.py"), f"{container}:{CLIENT}"], check=True)
    return {"container": container, "inventory": inventory, "chat": chat, "first": first,
            "https_port": targets.published_port(container, 443)}


def client(site, app: str, *args: str) -> str:
    return sh(site["container"], shlex.join([python(app), CLIENT, args[0], NGINX, *args[1:]]))


class Listener:
    """A WebSocket held open in the target: what it received, line by line (see wsclient.listen)."""

    def __init__(self, site, app: str, url: str, seconds: int = 600) -> None:
        self.proc = subprocess.Popen(["docker", "exec", site["container"], python(app), CLIENT, "listen", NGINX, url,
                                      str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.next(60) == "open"

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next(self, timeout: float = 30) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing received within {timeout} s") from None

    def close(self) -> None:
        self.proc.kill()


def test_the_echo_answers_over_tls_with_the_apps_own_release(site):
    assert client(site, "chat", "echo", "wss://chat.test/ws/echo/", "hi") == "chat v1: hi"
    assert client(site, "lobby", "echo", "wss://lobby.test/ws/echo/", "hi") == "lobby v1: hi"
    # uvicorn's worker in Gunicorn, under Supervisor.
    assert "uvicorn_worker.UvicornWorker" in sh(site["container"], "cat /webapps/chat/conf/gunicorn.conf.py")
    assert "[warn]" not in sh(site["container"], "nginx -t 2>&1")


def test_a_websocket_from_another_origin_is_refused(site):
    # The project's AllowedHostsOriginValidator, with the ALLOWED_HOSTS djangohost set.
    refused = subprocess.run(["docker", "exec", site["container"], python("chat"), CLIENT, "echo", NGINX,
                              "wss://chat.test/ws/echo/", "hi", "https://evil.test"], capture_output=True, text=True)
    assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr[-500:]


def test_a_broadcast_from_bin_manage_reaches_a_connected_client(site):
    listener = Listener(site, "chat", "wss://chat.test/ws/broadcast/")
    try:
        said = sh(site["container"], "/webapps/chat/bin/manage broadcast 'to everyone'")
        assert "sent: to everyone" in said
        assert listener.next() == "message to everyone"
    finally:
        listener.close()


def test_the_stream_delivers_each_chunk_as_it_is_made(site):
    lines = client(site, "chat", "stream", "https://chat.test/stream/").splitlines()
    events = [(float(arrival), float(made)) for arrival, made in
              (re.fullmatch(r"([0-9.]+)\tdata: \d+ ([0-9.]+)", line).groups() for line in lines)]  # type: ignore[union-attr]
    assert len(events) == 5, lines
    first_arrival, last_made = events[0][0], events[-1][1]
    # The first chunk was there two seconds before the last was made; none waited for the next.
    assert last_made - first_arrival > 1.5, events
    assert all(arrival - made < 0.4 for arrival, made in events), events


def test_a_redeploy_fails_no_request_and_websockets_reconnect_to_the_new_release(site):
    chat = Listener(site, "chat", "wss://chat.test/ws/broadcast/")
    lobby = Listener(site, "lobby", "wss://lobby.test/ws/broadcast/")
    try:
        master = sh(site["container"], "supervisorctl pid chat")
        set_release(site["chat"], "chat v2")
        with Load(site["https_port"], "chat.test", markers=("chat v1", "chat v2"), https=True) as load:
            run = pyinfra(site["inventory"])
        assert load.failed == {}, (load.statuses, run.output[-3000:])
        assert load.order == ["chat v1", "chat v2"] and load.served > 20, (load.order, load.served)
        # A graceful reload: the same master, new workers.
        assert sh(site["container"], "supervisorctl pid chat") == master
        # The old workers closed the WebSocket with 1012 (service restart) and said how many they had.
        assert chat.next(60) == "closed 1012", "\n".join(run.changed())
        held = re.search(r"app chat: (\d+) open connection\(s\) of the old workers closed", run.output)
        assert held and int(held.group(1)) >= 1, run.output[-3000:]
        assert client(site, "chat", "echo", "wss://chat.test/ws/echo/", "again") == "chat v2: again"
        # The other app's WebSocket stayed open and still gets its messages.
        sh(site["container"], "/webapps/lobby/bin/manage broadcast 'still here'")
        assert lobby.next() == "message still here"
    finally:
        chat.close()
        lobby.close()


def test_a_second_run_changes_nothing_and_the_status_view_shows_both(site):
    assert pyinfra(site["inventory"]).changed() == []
    status = pyinfra(site["inventory"], deploy="deploys/status.py", json_results=False).output
    assert re.search(r"\n  chat +RUNNING", status) and re.search(r"\n  lobby +RUNNING", status), status[-2000:]
