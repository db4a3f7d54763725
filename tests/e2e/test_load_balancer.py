"""A load balancer, two app servers and a database server, from one inventory, on a Docker network
of the test's own: hello on both app servers, its database on the db host, requests through the
load balancer only; chat (examples/chat, an ASGI app) on app1, its WebSockets and stream through the
load balancer."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests import targets
from tests.helpers import PEBBLE_DIRECTORY, REPO, copy_example, http_get, pyinfra, sh, start_pebble, write_groups
from tests.load import Load
from tests.targets import address

pytestmark = pytest.mark.e2e

OLD, NEW = "Hello from djangohost", "Hello from both servers"
CHAT = {"server": "asgi", "broker": True, "database": False, "media": False, "backup": False}
HELLO = {"media": False, "backup": False,
         "processes": {"ticker": {"command": "sleep 100000", "unique": True}},
         "schedule": [{"name": "tick", "command": "true", "at": "hourly"}]}


@pytest.fixture(scope="module")
def cluster(network_factory, tmp_path_factory):
    # pebble stands for Let's Encrypt: goodbye.test names the load balancer on the test's network.
    hosts = network_factory("lb", "app1", "app2", "db", "pebble", published=("lb",),
                            aliases={"lb": ("goodbye.test",), "pebble": ("pebble",)})
    start_pebble(hosts["pebble"], hosts["lb"])
    workdir = tmp_path_factory.mktemp("load-balancer")
    hello = {"name": "hello", "domains": ["hello.test"], "source": str(copy_example("hello", workdir)), **HELLO}
    # Declared for both app servers, as group data would; its entry names the one that runs it.
    goodbye = {"name": "goodbye", "domains": ["goodbye.test"], "source": str(copy_example("goodbye", workdir)),
               "backup": False, "servers": [f"@docker/{hosts['app2']}"],
               "tls": {"mode": "acme", "email": "ops@goodbye.test", "directory": PEBBLE_DIRECTORY,
                       "hsts_max_age": 600}}
    # Its channel layer is its server's Redis: a broker is on one app server only.
    chat = {"name": "chat", "domains": ["chat.test"], "source": str(copy_example("chat", workdir)),
            "servers": [f"@docker/{hosts['app1']}"], **CHAT}
    inventory = write_groups(workdir / "inventory.py", {
        "lb": [(hosts["lb"], {"private_address": address(hosts["lb"])})],
        "app": [(hosts[name], {"private_address": address(hosts[name]), "apps": [hello, goodbye, chat]})
                for name in ("app1", "app2")],
        "db": [(hosts["db"], {"private_address": address(hosts["db"])})],
    })
    pyinfra(inventory)
    # A WebSocket client for chat, run by its own Python on app1 (see tests/wsclient.py).
    subprocess.run(["docker", "cp", str(REPO / "tests" / "wsclient.py"), f"{hosts['app1']}:/root/wsclient.py"],
                   check=True)
    return {**hosts, "inventory": inventory, "workdir": workdir, "port": targets.published_port(hosts["lb"], 80)}


def served_by(cluster, server: str) -> int:
    return int(sh(cluster[server], "grep -c 'GET / ' /var/log/nginx/djangohost/hello/access.log || true"))


def test_both_app_servers_answer_through_the_load_balancer(cluster):
    before = {server: served_by(cluster, server) for server in ("app1", "app2")}
    for _ in range(10):
        status, body = http_get(cluster["port"], "hello.test")
        assert status == 200 and OLD in body
    assert all(served_by(cluster, server) > before[server] for server in ("app1", "app2"))
    # One database for both: each request counted a visit in it.
    visits = sh(cluster["db"], "runuser -u postgres -- psql -XAtq -d hello -c 'select count(*) from hello_visit'")
    assert int(visits) >= 10


def test_app_servers_answer_the_load_balancer_only(cluster):
    app1 = address(cluster["app1"])
    direct = sh(cluster["db"], f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Host: hello.test' http://{app1}/")
    assert direct == "403"
    through = sh(cluster["lb"], f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Host: hello.test' http://{app1}/")
    assert through == "200"
    assert "hello" not in sh(cluster["app1"], "ls /etc/postgresql 2>/dev/null || true")


def test_tls_and_hsts_end_at_the_load_balancer(cluster):
    lb = cluster["lb"]
    https = sh(lb, "curl -sSik --resolve goodbye.test:443:127.0.0.1 https://goodbye.test/")
    # 200, not Django's redirect to https: the app saw the scheme the load balancer passed on.
    assert https.startswith("HTTP/2 200") and "Goodbye from djangohost" in https, https[:300]
    assert https.lower().count("strict-transport-security: max-age=600") == 1, https[:600]
    served = sh(lb, "openssl s_client -connect 127.0.0.1:443 -servername goodbye.test </dev/null 2>/dev/null "
                    "| openssl x509 -noout -issuer -ext subjectAltName")
    assert "Pebble Intermediate CA" in served and "DNS:goodbye.test" in served, served  # ACME, at the load balancer
    plain = sh(lb, "curl -sSi --resolve goodbye.test:80:127.0.0.1 http://goodbye.test/x")
    assert plain.startswith("HTTP/1.1 301") and "location: https://goodbye.test/x" in plain.lower(), plain[:300]
    assert sh(lb, "stat -L -c '%U %a' /etc/djangohost/tls/goodbye/privkey.pem") == "root 600"
    # The app server holds no certificate and runs goodbye; app1 does not.
    assert sh(cluster["app2"], "ls /etc/djangohost/tls 2>/dev/null || true") == ""
    assert sh(cluster["app1"], "id goodbye 2>&1 || true").endswith("no such user")


def test_an_asgi_apps_websockets_and_stream_pass_the_load_balancer(cluster):
    # From app1, with chat's own Python (tests/wsclient.py), to the load balancer on the test's network.
    client = ["docker", "exec", cluster["app1"], "/webapps/chat/venv/bin/python", "/root/wsclient.py"]
    lb = f"{address(cluster['lb'])}:80"
    for _ in range(2):  # the handshake passed on by both Nginx, over a kept-alive connection too
        echo = subprocess.run([*client, "echo", lb, "ws://chat.test/ws/echo/", "hi"], capture_output=True, text=True)
        assert echo.stdout.strip() == "chat v1: hi", echo.stderr[-500:]
    stream = subprocess.run([*client, "stream", lb, "http://chat.test/stream/"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    events = [(float(line.split("\t")[0]), float(line.split(" ")[-1])) for line in stream]
    assert len(events) == 5, stream
    # Neither Nginx buffered it: the first chunk arrived as it was made, two seconds before the last.
    assert events[-1][1] - events[0][0] > 1.5 and all(arrival - made < 0.4 for arrival, made in events), events


def test_an_asgi_apps_redeploy_behind_the_load_balancer_fails_no_request(cluster):
    # chat runs on app1 alone: it stays in its upstream through app1's turn, and its reload fails
    # nothing; a WebSocket through the load balancer is closed by the old workers and reconnects.
    client = ["docker", "exec", cluster["app1"], "/webapps/chat/venv/bin/python", "/root/wsclient.py"]
    lb = f"{address(cluster['lb'])}:80"
    listener = subprocess.Popen([*client, "listen", lb, "ws://chat.test/ws/broadcast/", "300"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout and listener.stdout.readline().strip() == "open"
        consumers = cluster["workdir"] / "chat" / "chat" / "consumers.py"
        consumers.write_text(consumers.read_text().replace('RELEASE = "chat v1"', 'RELEASE = "chat v2"'))
        started = time.monotonic()
        with Load(cluster["port"], "chat.test", markers=("chat v1", "chat v2")) as load:
            pyinfra(cluster["inventory"])
        took = time.monotonic() - started
        assert set(load.statuses) == {200} and load.order == ["chat v1", "chat v2"], (load.statuses, load.order)
        assert load.retried <= 4, load.retried  # a close by each reload of the load balancer, at most
        assert listener.stdout.readline().strip() == "closed 1012"
        # The drain waited for the WebSocket (30 s at most), then the reload closed it.
        assert took < 90, took
    finally:
        listener.kill()
    echo = subprocess.run([*client, "echo", lb, "ws://chat.test/ws/echo/", "again"], capture_output=True, text=True)
    assert echo.stdout.strip() == "chat v2: again", echo.stderr[-500:]


def test_the_schedule_and_unique_processes_run_on_the_primary_only(cluster):
    assert "RUNNING" in sh(cluster["app1"], "supervisorctl status hello-ticker")
    assert "no such process" in sh(cluster["app2"], "supervisorctl status hello-ticker || true").lower()
    assert sh(cluster["app1"], "ls /etc/cron.d | grep -c hello || true") != "0"
    assert sh(cluster["app2"], "ls /etc/cron.d | grep -c hello || true") == "0"


def test_a_code_deploy_with_a_migration_fails_no_request(cluster):
    source = cluster["workdir"] / "hello"
    views = source / "hello" / "views.py"
    views.write_text(views.read_text().replace(OLD, NEW))
    # Nullable: the release still serving until the switch writes rows without it.
    models = source / "hello" / "models.py"
    models.write_text(models.read_text() + "    note = models.TextField(null=True)\n")
    (source / "hello" / "migrations" / "0099_visit_note.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [{latest_migration(source)!r}]\n"
        "    operations = [migrations.AddField('visit', 'note', models.TextField(null=True))]\n")
    with Load(cluster["port"], "hello.test", markers=(OLD, NEW)) as load:
        run = pyinfra(cluster["inventory"])
    assert set(load.statuses) == {200}, load.statuses
    assert load.retried <= 4, load.retried  # a close by each of the four reloads of the load balancer, at most
    assert load.seen[NEW] > 0
    # One server after the other: app2 leaves the load balancer only once app1 is back.
    app1, app2 = (f"@docker/{cluster[name]}" for name in ("app1", "app2"))
    roll = [name for name in run.changed() if name.startswith("Roll: ")]
    assert roll == [f"Roll: {app1} out of the load balancer", f"Roll: requests still on {app1} answered",
                    f"Roll: {app1} back into the load balancer", f"Roll: {app2} out of the load balancer",
                    f"Roll: requests still on {app2} answered", f"Roll: {app2} back into the load balancer"]
    assert "down" not in sh(cluster["lb"], "cat /etc/nginx/sites-enabled/djangohost-balancer")
    applied = sh(cluster["db"], "runuser -u postgres -- psql -XAtq -d hello -c "
                                "\"select count(*) from django_migrations where name = '0099_visit_note'\"")
    assert applied == "1"
    for _ in range(6):
        assert NEW in http_get(cluster["port"], "hello.test")[1]


def latest_migration(source) -> tuple[str, str]:
    names = sorted(path.stem for path in (source / "hello" / "migrations").glob("0*.py") if path.stem < "0099")
    return ("hello", names[-1])


def test_a_server_that_fails_stops_the_roll(cluster):
    # A release that answers 500 on app1 only: app1 refuses it, and app2, whose check it would
    # pass, keeps its release too; requests through the load balancer never see it.
    views = cluster["workdir"] / "hello" / "hello" / "views.py"
    good = views.read_text()
    views.write_text(good.replace("def home(request):\n", "def home(request):\n"
                                  "    import socket\n"
                                  "    if socket.gethostname().endswith('-app1'):\n"
                                  "        return HttpResponse('broken here', status=500)\n")
                     .replace(NEW, "Hello, half broken"))
    with Load(cluster["port"], "hello.test", markers=(NEW, "Hello, half broken")) as load:
        run = pyinfra(cluster["inventory"], check=False, json_results=False)
    assert run.returncode != 0
    assert f"djangohost: @docker/{cluster['app1']}: the deploy of hello FAILED" in run.output
    assert f"djangohost: @docker/{cluster['app2']}: the deploy of hello FAILED" in run.output
    assert set(load.statuses) == {200} and load.seen["Hello, half broken"] == 0, (load.statuses, load.seen)
    for server in ("app1", "app2"):
        assert NEW in sh(cluster[server], "curl -s -H 'Host: hello.test' http://127.0.0.1/")
    views.write_text(good)
    pyinfra(cluster["inventory"])


def test_a_second_run_changes_nothing(cluster):
    assert pyinfra(cluster["inventory"]).changed() == []


def test_the_status_view_shows_every_role(cluster):
    out = pyinfra(cluster["inventory"], deploy="deploys/status.py", json_results=False).output
    app1, app2 = address(cluster["app1"]), address(cluster["app2"])
    assert f"roles: lb\n  balances hello            over {app1}, {app2}" in out
    assert f"roles: db\n  database hello            for {app1}, {app2}" in out
    assert out.count("roles: app\n  hello            RUNNING") == 2
    assert "hello-ticker" in out and "job tick" in out


def test_a_dead_app_server_costs_at_most_the_request_in_flight(cluster):
    # One client, one request at a time: at most the one in flight on app2 as it dies may fail.
    with Load(cluster["port"], "hello.test") as load:
        time.sleep(1)
        subprocess.run(["docker", "kill", cluster["app2"]], capture_output=True, check=True)
        killed = time.monotonic()
        time.sleep(5)
    failed = sum(count for status, count in load.statuses.items() if status != 200)
    assert failed <= 1, load.statuses
    after = [seconds for start, seconds in load.latencies if start > killed + 1]
    assert len(after) > 20, load.statuses
