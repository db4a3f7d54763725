"""Preview, targeted deploys, removal and conflicts: the everyday operations on many sites."""

from __future__ import annotations

import re
import subprocess
import threading

import pytest

from tests.helpers import as_user, copy_example, http_get, master_pid, pyinfra, sh, wait_for, write_inventory

pytestmark = pytest.mark.e2e

# What "the host has not changed" means to a user: files, processes, databases.
SNAPSHOT = ("find /webapps /etc/nginx /etc/supervisor /var/lib/djangohost -xdev \\( -type f -o -type l \\) "
            "-not -path '*/logs/*' -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum 2>&1; "
            "ls -l /webapps/*/current; supervisorctl pid all 2>/dev/null; "
            "runuser -u postgres -- psql -XAtc 'select datname from pg_database order by 1'")


@pytest.fixture(scope="module")
def site(deploy_examples):
    return deploy_examples("everyday", {"hello": {}, "goodbye": {}})


def edit(site, app: str, old: str, new: str) -> None:
    views = site["workdir"] / app / app / "views.py"
    views.write_text(views.read_text().replace(old, new))


def say(site, message: str) -> None:
    """hello's page says `message`, whatever it said before."""
    views = site["workdir"] / "hello" / "hello" / "views.py"
    views.write_text(re.sub(r'MESSAGE = ".*"', f'MESSAGE = "{message}"', views.read_text()))


def with_new_app(site) -> list[dict]:
    extra = site["workdir"] / "extra-src" / "hello"
    if not extra.exists():
        copy_example("hello", extra.parent)
    return [*site["apps"], {"name": "extra", "domains": ["extra.test"], "source": str(extra),
                            "secrets": {"EXTRA_TOKEN": "tok-extra-0123456789"}}]


def test_dry_run_shows_every_file_of_a_new_app_and_changes_nothing(site):
    container = site["container"]
    edit(site, "hello", "Hello from djangohost", "Hello, previewed")
    inventory = write_inventory(site["workdir"] / "with-extra.py", container, with_new_app(site))
    before = sh(container, SNAPSHOT)

    preview = pyinfra(inventory, "--dry", "--diff", json_results=False)

    out = preview.output
    # Site and configuration are written staged, where they wait for their checks (see the README).
    for path in ("/etc/nginx/djangohost-staged/extra", "/etc/supervisor/conf.d/extra.conf",
                 "/webapps/extra/conf/next/gunicorn.conf.py", "/webapps/extra/conf/next/env",
                 "/webapps/extra/conf/next/djangohost_settings.py", "/webapps/extra/bin/gunicorn-start"):
        assert f"Will create {path}" in out, path
    assert re.search(r"^\s+\+\s+server_name extra.test;$", out, re.M)
    assert "+ EXTRA_TOKEN=********" in out and "tok-extra-0123456789" not in out
    assert "Will modify /webapps/hello" not in out  # hello's change is code, not a generated file
    assert "hello: release of code" in out and "hello: reload gunicorn" in out
    assert sh(container, SNAPSHOT) == before
    assert "Hello from djangohost" in http_get(site["port"], "hello.test")[1]


def test_dry_run_lists_exactly_what_the_run_then_does(site):
    inventory = write_inventory(site["workdir"] / "with-extra.py", site["container"], with_new_app(site))
    planned = pyinfra(inventory, "--dry").planned()
    done = pyinfra(inventory).changed()
    assert planned == done
    assert "Supervisor program | extra: supervisor update" in done
    assert "Hello, previewed" in http_get(site["port"], "hello.test")[1]
    assert http_get(site["port"], "extra.test")[0] == 200
    assert pyinfra(inventory, "--dry").planned() == []


def test_a_hundred_apps_are_read_planned_and_shown(site):
    """The facts that grow with the apps (about 1.5 KB each for HostState) go on stdin: on the
    command line, near 80 apps passed the kernel's 128 KiB for one argument and every run failed."""
    container = site["container"]
    apps = with_new_app(site)
    many = [*apps, *({**apps[-1], "name": f"many{n}", "domains": [f"many{n}.test"], "secrets": {}}
                     for n in range(100 - len(apps)))]
    inventory = write_inventory(site["workdir"] / "hundred.py", container, many)
    before = sh(container, SNAPSHOT)

    planned = pyinfra(inventory, "--dry", timeout=600).planned()
    status = pyinfra(inventory, deploy="deploys/status.py", json_results=False).output

    assert any("many96: " in name for name in planned)
    # Their Nginx reloads for the new sites: their health gates only.
    assert not [name for name in planned if re.search(r"\b(hello|goodbye): (?!health gate)", name)]
    assert re.search(r"^\s+many96\s+NO PROGRAM ", status, re.M)
    assert re.search(r"^\s+hello\s+RUNNING ", status, re.M)
    assert sh(container, SNAPSHOT) == before


def test_targeted_deploy_touches_only_that_app(site):
    container = site["container"]
    inventory = write_inventory(site["workdir"] / "with-extra.py", container, with_new_app(site))
    edit(site, "hello", "Hello, previewed", "Hello, targeted")
    edit(site, "goodbye", "Goodbye from djangohost", "Goodbye, not yet")
    goodbye_files = ("sha256sum /etc/nginx/sites-available/goodbye /etc/supervisor/conf.d/goodbye.conf "
                     "/webapps/goodbye/conf/* /webapps/goodbye/bin/*; "
                     "readlink /webapps/goodbye/current /webapps/goodbye/venv")
    before = (sh(container, goodbye_files), master_pid(container, "goodbye"),
              sh(container, "ps -o pid= --ppid $(supervisorctl pid goodbye)"))

    run = pyinfra(inventory, "--data", "app=hello")

    assert run.changed() and all("goodbye" not in name and "extra" not in name for name in run.changed())
    assert "Hello, targeted" in http_get(site["port"], "hello.test")[1]
    assert (sh(container, goodbye_files), master_pid(container, "goodbye"),
            sh(container, "ps -o pid= --ppid $(supervisorctl pid goodbye)")) == before
    assert "Goodbye from djangohost" in http_get(site["port"], "goodbye.test")[1]
    assert pyinfra(inventory, "--data", "app=hello").changed() == []
    both = pyinfra(inventory, "--data", "app=hello,goodbye")
    assert "Goodbye, not yet" in http_get(site["port"], "goodbye.test")[1]
    assert not [name for name in both.changed() if "extra" in name]


def test_unknown_target_or_colliding_name_stops_before_anything_runs(site):
    container = site["container"]
    inventory = write_inventory(site["workdir"] / "with-extra.py", container, with_new_app(site))
    before = sh(container, SNAPSHOT)
    run = pyinfra(inventory, "--data", "app=nope", check=False)
    assert run.returncode != 0 and "no app named nope" in run.output
    # `backup` is a Debian system user that djangohost did not create.
    colliding = write_inventory(site["workdir"] / "colliding.py", container, [
        *with_new_app(site), {"name": "backup", "domains": ["backup.test"], "source": site["apps"][0]["source"]}])
    run = pyinfra(colliding, check=False)
    assert run.returncode != 0
    assert f"host @docker/{container}, app backup, field name: the host has a user backup" in run.output
    assert sh(container, SNAPSHOT) == before


def test_two_runs_on_one_host_cannot_interleave(site):
    container, port = site["container"], site["port"]
    say(site, "Hello, one run at a time")  # the first run has work
    first: dict = {}
    running = threading.Thread(target=lambda: first.update(run=pyinfra(site["inventory"], check=False)))
    running.start()
    holder = wait_for(lambda: sh(container, "cat /run/djangohost/lock/holder 2>/dev/null", check=False),
                      timeout=60, interval=0.2)
    second = pyinfra(site["inventory"], check=False, json_results=False)
    running.join()
    assert second.returncode != 0
    assert (f"djangohost: host @docker/{container} is being changed by another run ({holder}); this run "
            "stopped before changing anything") in second.output
    assert "Success" not in second.output
    assert first["run"].returncode == 0 and "Hello, one run at a time" in http_get(port, "hello.test")[1]
    assert sh(container, "ls -d /run/djangohost/lock 2>/dev/null || true") == ""  # given back

    # A run that fails on the host gives the lock back too, and the next run goes ahead.
    failing = write_inventory(site["workdir"] / "failing.py", container, site["apps"],
                              djangohost_packages=["nginx", "no-such-package-djangohost"])
    assert pyinfra(failing, check=False).returncode != 0
    assert sh(container, "ls -d /run/djangohost/lock 2>/dev/null || true") == ""
    assert pyinfra(site["inventory"]).changed() == []

    # A run with nothing to change takes no lock (two round trips): with no place for a lock, it
    # succeeds; one that finds a lock taken stops all the same.
    sh(container, "mv /run/djangohost /run/djangohost.kept && touch /run/djangohost")
    try:
        assert pyinfra(site["inventory"]).changed() == []
    finally:
        sh(container, "rm /run/djangohost && mv /run/djangohost.kept /run/djangohost")
    sh(container, "mkdir /run/djangohost/lock && echo 'alice@elsewhere pid 1' > /run/djangohost/lock/holder")
    blocked = pyinfra(site["inventory"], check=False, json_results=False)
    sh(container, "rm -r /run/djangohost/lock")
    assert blocked.returncode != 0 and "being changed by another run (alice@elsewhere pid 1)" in blocked.output


def test_a_failing_database_step_stops_only_its_app(site):
    container, port = site["container"], site["port"]
    spare = {"name": "spare", "domains": ["spare.test"], "source": site["apps"][0]["source"]}
    inventory = write_inventory(site["workdir"] / "with-spare.py", container, [*site["apps"], spare])
    say(site, "Hello, beside a failure")
    # A session on PostgreSQL's template database: CREATE DATABASE cannot copy it meanwhile.
    session = subprocess.Popen(["docker", "exec", container, "runuser", "-u", "postgres", "--", "psql", "-d",
                                "template1", "-c", "select pg_sleep(600)"], stdout=subprocess.DEVNULL)
    on_template = "runuser -u postgres -- psql -XAtc \"select {} from pg_stat_activity where datname = 'template1'\""
    try:
        wait_for(lambda: sh(container, on_template.format("count(*)")) == "1", timeout=30)
        run = pyinfra(inventory, check=False, json_results=False)
    finally:
        sh(container, on_template.format("pg_terminate_backend(pid)"))
        session.wait()
    assert run.returncode != 0
    assert 'source database "template1" is being accessed by other users' in run.output
    assert f"djangohost: @docker/{container}: the deploy of spare FAILED (the error is above); hello, goodbye " \
        "deployed" in run.output
    assert "Hello, beside a failure" in http_get(port, "hello.test")[1]
    pyinfra(inventory)  # the session gone, spare deploys
    assert http_get(port, "spare.test")[0] == 200
    pyinfra(write_inventory(site["workdir"] / "with-spare.py", container,
                            [*site["apps"], {"name": "spare", "state": "absent", "purge": True}]))


def test_removing_an_app_keeps_its_data_unless_purged_and_others_keep_serving(site):
    container, port = site["container"], site["port"]
    failures: list[object] = []
    served = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal served
        while not stop.is_set() and served < 20000:
            status, _ = http_get(port, "goodbye.test")
            if status != 200:
                failures.append(status)
            served += 1

    def remove(purge: bool) -> None:
        apps = [*site["apps"], {"name": "extra", "state": "absent", "purge": purge}]
        pyinfra(write_inventory(site["workdir"] / "removal.py", container, apps))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        remove(purge=False)
        assert http_get(port, "extra.test") == (None, "")
        assert "extra" not in sh(container, "supervisorctl status")
        assert sh(container, "ls /etc/nginx/sites-enabled /etc/nginx/sites-available").count("extra") == 0
        assert sh(container, "test -e /webapps/extra/run/gunicorn.sock || echo gone") == "gone"
        # Kept: its database, files and user.
        databases = sh(container, "runuser -u postgres -- psql -XAtc 'select datname from pg_database'")
        assert "extra" in databases.split()
        assert sh(container, "ls /webapps/extra/conf/env && id -u extra >/dev/null && echo kept").endswith("kept")

        # What the app's user and its build identity leave running or scheduled, and in /tmp: a
        # later app given the same uid would inherit it.
        uids = {user: sh(container, f"id -u {user}") for user in ("extra", "_extra")}
        for user in uids:
            as_user(container, user, "sleep 600 >/dev/null 2>&1 & echo '* * * * * true' | crontab - && "
                                     "touch /tmp/left-by-$(id -un) /dev/shm/left-by-$(id -un)")
        remove(purge=True)
        for user, uid in uids.items():
            # Processes gone (a zombie the container's first process never reaps holds nothing).
            assert sh(container, f"pgrep -r R,S,D,T,t -u {uid}; pgrep -r R,S,D,T,t -U {uid}; "
                                 f"ls /var/spool/cron/crontabs/{user}; "
                                 f"find /tmp /var/tmp /dev/shm -xdev -user {uid}", check=False) == "", user
        assert sh(container, "runuser -u postgres -- psql -XAtc \"select count(*) from pg_roles r, pg_database d "
                             "where r.rolname='extra' or d.datname='extra'\"") == "0"
        assert sh(container, "ls /webapps; id extra 2>&1", check=False).endswith("no such user")
        assert "extra" not in sh(container, "ls /webapps")
        assert "extra." not in sh(container, "ls /var/lib/djangohost/background")  # its build's output
    finally:
        stop.set()
        thread.join()
    assert served > 0 and failures == []
    apps = [*site["apps"], {"name": "extra", "state": "absent", "purge": True}]
    assert pyinfra(write_inventory(site["workdir"] / "removal.py", container, apps)).changed() == []


def test_a_package_apt_cannot_install_fails_the_run_with_apts_reason(container_factory, tmp_path):
    # A package the host's djangohost_packages adds may be what a build needs (libpq-dev): it is
    # installed before any build, and its failure stops the run with apt's own words.
    container = container_factory()
    source = copy_example("hello", tmp_path)
    inventory = write_inventory(tmp_path / "inventory.py", container,
                                [{"name": "hello", "domains": ["hello.test"], "source": str(source)}],
                                djangohost_packages=["nginx", "supervisor", "python3", "python3-pip-whl",
                                                     "djangohost-no-such-package"])
    run = pyinfra(inventory, check=False, json_results=False)
    assert run.returncode != 0
    assert "Unable to locate package djangohost-no-such-package" in run.output, run.output[-3000:]
    assert sh(container, "ls /webapps/hello 2>&1 || true").endswith("No such file or directory")
