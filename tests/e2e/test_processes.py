"""Beyond the web process: a Celery worker and beat on the app's own Redis, scheduled jobs, and
logs that are rotated under load without losing a line.

Debian 12 without systemd, through @docker: cron starts the jobs where no systemd timer could.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time

import pytest

from tests.helpers import as_user, http_get, master_pid, pyinfra, sh, wait_for, write_inventory

pytestmark = pytest.mark.e2e

ORDERS = {
    "database": True,
    "broker": True,
    "processes": {"worker": "celery -A orders worker --loglevel info --concurrency 2",
                  "beat": {"command": "celery -A orders beat --loglevel info", "stop_wait": 20}},
    "schedule": [{"name": "count", "command": "manage count_orders", "cron": "* * * * *"},
                 {"name": "sessions", "command": "manage check", "at": "daily"}],
    "backup": {"cron": "* * * * *"},  # the scheduled backup fires here too, where cron has no systemd
}


@pytest.fixture(scope="module")
def site(deploy_examples):
    # Logs rotated past 2 KB, so that a few hundred requests rotate them.
    return deploy_examples("processes", {"hello": {}, "orders": ORDERS}, djangohost_logs={"size": "2k", "keep": 50})


def get(site: dict, path: str) -> dict:
    status, body = http_get(site["port"], "orders.test", path)
    assert status == 200, body
    return json.loads(body)


def pids(container: str, *programs: str) -> dict[str, int]:
    return {program: int(sh(container, f"supervisorctl pid {program}")) for program in programs}


def test_a_request_enqueues_a_task_that_the_worker_writes_to_the_apps_database(site):
    container = site["container"]
    order = get(site, "/order/")["id"]
    done = wait_for(lambda: get(site, f"/order/{order}/")["done"], timeout=30)
    assert done
    # The worker runs as the app's user, and beat's ticks reach the database through it too.
    worker = sh(container, "supervisorctl pid orders-worker")
    assert sh(container, f"ps -o user= -p {worker}") == "orders"
    ticks = get(site, "/")["ticks"]
    wait_for(lambda: get(site, "/")["ticks"] > ticks, timeout=10)
    status = pyinfra(site["inventory"], deploy="deploys/status.py", json_results=False).output
    for program in ("orders-redis", "orders-worker", "orders-beat"):
        assert any(line.split()[:2] == [program, "RUNNING"] for line in status.splitlines()), status
    assert pyinfra(site["inventory"]).changed() == []


def test_no_other_app_can_reach_the_apps_broker(site):
    container = site["container"]
    socket = "/webapps/orders/run/redis.sock"
    assert sh(container, f"runuser -u orders -- redis-cli -s {socket} ping") == "PONG"
    # Another app's user, and Nginx's, cannot open it; nothing listens on Redis's port.
    for user in ("hello", "www-data"):
        answer = sh(container, f"runuser -u {user} -- redis-cli -s {socket} ping 2>&1", check=False)
        assert "PONG" not in answer and "Permission denied" in answer, (user, answer)
    assert ":6379" not in sh(container, "cat /proc/net/tcp /proc/net/tcp6 | awk '{print $2}' | "
                                        "while read a; do echo \":$((0x${a##*:}))\"; done", check=False)
    assert sh(container, "pgrep -c -x redis-server", check=False) == "1"
    assert sh(container, f"stat -c '%U %a' {socket}") == "orders 700"


def test_a_redeploy_lets_a_long_task_finish_and_never_runs_beat_twice(site):
    container = site["container"]
    before = pids(container, "orders", "orders-redis", "orders-worker", "orders-beat", "hello")
    order = get(site, "/order/?seconds=12")["id"]
    wait_for(lambda: get(site, f"/order/{order}/")["started"], timeout=20)

    beats: list[int] = []
    deploying = threading.Event()

    def count_beats() -> None:
        while not deploying.is_set():
            beats.append(int(sh(container, "pgrep -u orders -f -c 'celery -A orders beat'", check=False) or 0))
            time.sleep(0.2)

    watcher = threading.Thread(target=count_beats)
    watcher.start()
    try:
        (site["workdir"] / "orders" / "orders" / "views.py").open("a").write("\n# a new release\n")
        run = pyinfra(site["inventory"])
    finally:
        deploying.set()
        watcher.join()
    assert "Supervisor program | orders: restart processes" in run.changed()
    # The task the old worker had begun was finished by it, not lost and not run again.
    finished = get(site, f"/order/{order}/")
    assert finished["done"] and finished["worker_pid"] != 0
    after = pids(container, "orders", "orders-redis", "orders-worker", "orders-beat", "hello")
    assert after["orders-worker"] != before["orders-worker"] and after["orders-beat"] != before["orders-beat"]
    # Gunicorn was reloaded, not restarted; the broker and the other app were left alone.
    for program in ("orders", "orders-redis", "hello"):
        assert after[program] == before[program], (program, run.changed(), sh(
            container, "tail -n 30 /var/log/supervisor/supervisord.log /webapps/orders/logs/gunicorn.log", check=False))
    assert max(beats) == 1 and len(beats) > 10, beats
    assert "Warm shutdown" in sh(container, "cat /webapps/orders/logs/worker.log*")


def test_a_targeted_deploy_of_another_app_leaves_the_processes_alone(site):
    container = site["container"]
    before = pids(container, "orders-redis", "orders-worker", "orders-beat")
    (site["workdir"] / "hello" / "hello" / "views.py").open("a").write("\n# a new release of hello\n")
    pyinfra(site["inventory"], "--data", "app=hello")
    assert pids(container, "orders-redis", "orders-worker", "orders-beat") == before


def test_a_scheduled_job_runs_as_the_app_logs_its_output_and_never_overlaps(site):
    container = site["container"]
    # cron runs `count` every minute.
    record = wait_for(lambda: sh(container, "cat /var/lib/djangohost/jobs/orders/count 2>/dev/null", check=False),
                      timeout=75, interval=2)
    assert record.split()[1] == "0"
    log = sh(container, "cat /webapps/orders/logs/job-count.log")
    assert "[count] started: manage count_orders" in log and "orders: " in log and "exited with status 0" in log
    status = pyinfra(site["inventory"], deploy="deploys/status.py", json_results=False).output
    assert any("job count" in line and "exit 0" in line for line in status.splitlines()), status
    assert any("job sessions" in line and "never run" in line for line in status.splitlines()), status
    backups = wait_for(lambda: sh(container, "ls /var/backups/djangohost/orders", check=False).split(),
                       timeout=75, interval=2)
    assert backups[-1].endswith("-scheduled")
    assert sh(container, f"ls /var/backups/djangohost/orders/{backups[-1]}").split() == \
        ["db.dump", "manifest.json", "media.tar.gz"]

    # Two runs of one job at once: the second does not start. The command runs as the app.
    job = "/webapps/orders/bin/job slow sh -c 'id -un; sleep 4'"
    first = subprocess.Popen(["docker", "exec", container, "sh", "-c", job])
    time.sleep(1)
    sh(container, job)
    first.wait(timeout=20)
    log = sh(container, "cat /webapps/orders/logs/job-slow.log")
    assert log.count("[slow] started") == 1 and "[slow] not started: its previous run is still going" in log
    assert "\norders\n" in log


def test_logs_rotate_under_load_without_losing_a_line(site):
    container = site["container"]
    load = ("for i in $(seq 1 400); do curl -s -o /dev/null -H 'Host: hello.test' "
            "\"http://127.0.0.1/?n=$i\"; done")
    requests = subprocess.Popen(["docker", "exec", container, "sh", "-c", load])
    while requests.poll() is None:
        sh(container, "logrotate --force --state /var/lib/djangohost/logrotate.state /etc/djangohost/logrotate.conf")
        time.sleep(0.5)
    assert requests.returncode == 0
    logs = "/var/log/nginx/djangohost/hello/access.log"
    assert int(sh(container, f"ls {logs}.* | wc -l")) >= 3
    lines = sh(container, f"zcat -f {logs} {logs}.* | grep -o '?n=[0-9]*' | sort -u | wc -l")
    assert int(lines) == 400
    assert sh(container, f"stat -c '%U %G %a' {logs.rsplit('/', 1)[0]}") == "www-data hello 750"
    # Nginx writes to the new file; no process holds a log that was deleted.
    assert sh(container, "find /proc/[0-9]*/fd -lname '*(deleted)' -ls 2>/dev/null | grep -e /webapps -e /var/log",
              check=False) == ""
    # Supervisor rotates the process logs itself, at the host's size.
    assert sh(container, "ls /webapps/orders/logs/ | grep -c '^beat.log.[0-9]'", check=False) != "0"
    assert master_pid(container, "hello")


def test_limits_this_host_cannot_apply_stop_the_run_before_anything_runs(site):
    container = site["container"]
    before = pids(container, "orders", "orders-worker", "hello")
    apps = [{**app, "limits": {"memory": "512M"}} if app["name"] == "orders" else app for app in site["apps"]]
    inventory = write_inventory(site["workdir"] / "limits.py", container, apps,
                                djangohost_logs={"size": "2k", "keep": 50})
    run = pyinfra(inventory, check=False)
    assert run.returncode != 0
    assert f"host @docker/{container}, app orders, field limits: this host runs without systemd" in run.output
    assert run.changed() == []
    assert pids(container, "orders", "orders-worker", "hello") == before


def test_another_apps_user_can_neither_hold_nor_plant_nor_redirect_roots_locks(site):
    # In /run/lock, where anyone may create (sticky, as Debian's boot makes it), hello's user took
    # the names of root's locks: the host's (every run then refused, printing hello's text to the
    # operator's terminal), orders' backup lock (a link: root truncated the file it names) and a
    # lock of orders' job (held: the job never ran).
    container = site["container"]
    sh(container, "mkdir -p /run/lock && chmod 1777 /run/lock && echo 'root keeps this' > /etc/djangohost-victim")
    fake = "\\033]0;pwned\\007\\033[2Jalice@elsewhere pid 1"
    as_user(container, "hello", f"mkdir /run/lock/djangohost && printf '{fake}' > /run/lock/djangohost/holder && "
                                "ln -s /etc/djangohost-victim /run/lock/djangohost-backup-orders.lock")
    holder = as_user(container, "hello", "sh -c 'exec 9>/run/lock/djangohost-job-orders-locked && flock -n 9 && "
                                         "exec sleep 300' >/dev/null 2>&1 & echo $!")
    problems = []
    try:
        backup = sh(container, "timeout 60 /usr/local/sbin/djangohost-backup take orders >/dev/null 2>&1; echo $?")
        if backup != "0":
            problems.append(f"orders' backup exited with {backup}")
        if sh(container, "cat /etc/djangohost-victim") != "root keeps this":
            problems.append("root truncated /etc/djangohost-victim through hello's link")
        sh(container, "/webapps/orders/bin/job locked true")
        if "[locked] started" not in sh(container, "cat /webapps/orders/logs/job-locked.log"):
            problems.append("orders' job did not run: hello's user held its lock")
        apps = [{**app, "env": {"GREETING": "locks"}} if app["name"] == "orders" else app for app in site["apps"]]
        changed = write_inventory(site["workdir"] / "locks.py", container, apps,
                                  djangohost_logs={"size": "2k", "keep": 50})
        run = pyinfra(changed, check=False, json_results=False)
        if run.returncode != 0:
            problems.append(f"the deploy stopped: {run.output[-600:]!r}")
        if "\x1b]0;" in run.output or "\x1b[2J" in run.output:
            problems.append("hello's escape sequences reached the operator's terminal")
    finally:
        sh(container, f"kill {holder}; rm -rf /run/lock/djangohost /run/lock/djangohost-backup-orders.lock "
                      "/run/lock/djangohost-job-orders-locked /etc/djangohost-victim", check=False)
    assert problems == []


# Run as an app's code by a command root starts: it types a command into its controlling terminal.
INJECT = """
import fcntl, os, termios
try:
    tty = os.open("/dev/tty", os.O_RDWR)
except OSError:
    raise SystemExit(0)  # no terminal at all
for char in "touch /tmp/djangohost-pwned-by-tty\\n":
    fcntl.ioctl(tty, termios.TIOCSTI, char.encode())
"""
# Root's session in a terminal: a command of the app's, then what root types next is run.
SESSION = """#!/bin/bash
{command}
read -t 4 -r line && eval "$line"
"""


@pytest.mark.parametrize("command", [
    "/webapps/orders/bin/run python /tmp/inject.py",
    "/webapps/orders/bin/run python /tmp/inject.py </dev/null >/dev/null 2>&1",
    "/webapps/orders/bin/job inject python /tmp/inject.py",
])
def test_a_command_root_runs_as_the_app_cannot_type_into_roots_terminal(site, command):
    container = site["container"]
    sh(container, f"printf '%s' {shlex.quote(INJECT)} > /tmp/inject.py && chmod 644 /tmp/inject.py && "
                  f"printf '%s' {shlex.quote(SESSION.format(command=command))} > /root/session.sh && "
                  "rm -f /tmp/djangohost-pwned-by-tty")
    # A terminal whose input stays open (script passes on an end of input as ^D).
    sh(container, "sleep 6 | script -qec 'bash /root/session.sh' /dev/null", check=False)
    assert sh(container, "ls /tmp/djangohost-pwned-by-tty 2>&1", check=False).endswith("No such file or directory")
