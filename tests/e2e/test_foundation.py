"""Two apps on a plain container (no init system): served, isolated, idempotent, restarted alone."""

from __future__ import annotations

import re

import pytest

from tests.helpers import http_get, master_pid, pyinfra, sh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(deploy_examples):
    """A plain container with hello and goodbye deployed by one pyinfra run."""
    return deploy_examples("foundation", {"hello": {"domains": ["hello.test", "www.hello.test"]},
                                          "goodbye": {"workers": 2}})


def test_each_domain_gets_its_own_app_page_and_css(deployed):
    port = deployed["port"]
    for domain, app in [("hello.test", "hello"), ("www.hello.test", "hello"),
                        ("goodbye.test", "goodbye")]:
        status, body = http_get(port, domain)
        assert status == 200, (domain, status, body)
        assert f'class="app-{app}"' in body
        assert f"/static/{app}/site.css" in body
        status, css = http_get(port, domain, f"/static/{app}/site.css")
        assert status == 200 and f"h1.app-{app}" in css


def test_the_apps_build_and_check_side_by_side(deployed):
    """The two apps' virtualenv builds, then their candidate checks, ran in the background at the
    same time (deploys.components.app): each step's start (its .pid) came before the other's end (its
    .status). Their output is root's alone."""
    stat = sh(deployed["container"], "cd /var/lib/djangohost/background && stat -c '%n %.9Y %U %a' *")
    files = {name: (float(mtime), owner, mode) for name, mtime, owner, mode in map(str.split, stat.splitlines())}
    for step in ("virtualenv", "candidate"):
        (hello_start, hello_end), (goodbye_start, goodbye_end) = (
            (files[f"{app}.{step}.pid"][0], files[f"{app}.{step}.status"][0]) for app in ("hello", "goodbye"))
        assert hello_start < goodbye_end and goodbye_start < hello_end, step
    assert {(owner, mode) for _, owner, mode in files.values()} == {("root", "600")}
    assert sh(deployed["container"], "stat -c '%U %a' /var/lib/djangohost/background") == "root 700"


def test_static_files_are_revalidated_and_sent_precompressed(deployed):
    container, css = deployed["container"], "http://127.0.0.1/static/hello/site.css"

    def curl(*options: str) -> str:
        return sh(container, f"curl -s -o /dev/null -D - -H 'Host: hello.test' {' '.join(options)} {css}").lower()

    plain = curl()
    # Not a hashed name: revalidated before each use, and unchanged it costs a 304.
    assert "cache-control: no-cache" in plain and "immutable" not in plain
    etag = re.search(r"etag: (\S+)", plain)
    assert etag and curl(f"-H 'If-None-Match: {etag.group(1)}'").startswith("http/1.1 304")
    # The copies made at deploy time, sent as they are to a client that takes them.
    assert "content-encoding: br" in curl("-H 'Accept-Encoding: br, gzip'")
    assert "content-encoding: gzip" in curl("-H 'Accept-Encoding: gzip'")
    assert "content-encoding" not in plain
    assert sh(container, "stat -c '%U' /webapps/hello/static/hello/site.css.br /webapps/hello/static/hello/site.css.gz"
              ).split() == ["hello", "hello"]


def test_unknown_host_gets_no_answer(deployed):
    assert http_get(deployed["port"], "unknown.test") == (None, "")
    assert http_get(deployed["port"], "127.0.0.1") == (None, "")


def test_admin_login_is_served_with_its_css_in_production_mode(deployed):
    port = deployed["port"]
    status, body = http_get(port, "hello.test", "/admin/login/")
    assert status == 200 and "/static/admin/css/base.css" in body
    status, css = http_get(port, "hello.test", "/static/admin/css/base.css")
    assert status == 200 and "body" in css
    # DEBUG is off: an unknown URL gets Django's plain 404, not the debug page.
    status, body = http_get(port, "hello.test", "/no-such-page/")
    assert status == 404 and "URLconf" not in body


def test_each_gunicorn_runs_as_its_own_user_under_supervisor(deployed):
    container = deployed["container"]
    for app in ("hello", "goodbye"):
        pid = master_pid(container, app)
        assert sh(container, f"ps -o user= -p {pid}") == app
        workers = sh(container, f"ps -o user= --ppid {pid}").split()
        assert workers and set(workers) == {app}
        assert f"{app}/run/gunicorn.sock" in sh(container, f"cat /proc/{pid}/cmdline | tr '\\0' ' '; "
                                                       f"cat /webapps/{app}/conf/gunicorn.conf.py")
    # workers: 2 x cores + 1 by default, or as the entry says
    cores = int(sh(container, "nproc"))
    assert len(sh(container, f"ps -o pid= --ppid {master_pid(container, 'hello')}").split()) == 2 * cores + 1
    assert len(sh(container, f"ps -o pid= --ppid {master_pid(container, 'goodbye')}").split()) == 2


def test_apps_cannot_read_each_other(deployed):
    container = deployed["container"]
    assert sh(container, "stat -c '%U:%G %a' /webapps/hello/conf/env") == "root:hello 640"
    assert sh(container, "getent passwd hello | cut -d: -f7") == "/usr/sbin/nologin"
    for path in ("/webapps/hello/conf/env", "/webapps/hello/current/manage.py",
                 "/webapps/hello/run/gunicorn.sock", "/webapps/hello/static/hello/site.css"):
        denied = sh(container, f"runuser -u goodbye -- cat {path} >/dev/null 2>&1 && echo read || echo denied")
        assert denied == "denied", path
    assert sh(container, "runuser -u hello -- cat /webapps/hello/conf/env >/dev/null && echo read") == "read"


def test_secret_key_is_generated_once_and_kept(deployed):
    container = deployed["container"]
    key = sh(container, "grep -c '^SECRET_KEY=.\\{40,\\}' /webapps/hello/conf/env")
    assert key == "1"
    assert sh(container, "grep '^SECRET_KEY=' /webapps/hello/conf/env") not in deployed["first"].output


def test_manage_wrapper_sees_the_site_settings(deployed):
    container = deployed["container"]
    out = sh(container, "/webapps/hello/bin/manage shell -c "
                        "\"from django.conf import settings; import os; "
                        "print(settings.DEBUG, settings.ALLOWED_HOSTS, settings.STATIC_ROOT, os.getuid())\"")
    uid = sh(container, "id -u hello")
    assert out.splitlines()[-1] == f"False ['hello.test', 'www.hello.test'] /webapps/hello/static {uid}"


def test_second_run_reports_no_change(deployed):
    run = pyinfra(deployed["inventory"])
    assert run.changed() == []


def test_directories_changed_by_hand_are_put_back_and_only_they(deployed):
    container = deployed["container"]
    sh(container, "chmod 777 /webapps/hello/logs && chown goodbye /webapps/hello/run && rmdir /webapps/hello/media")

    run = pyinfra(deployed["inventory"])

    assert run.changed() == ["Django app | hello: directories of /webapps/hello", "History | hello: history"]
    assert sh(container, "stat -c '%U:%G %a' /webapps/hello/logs /webapps/hello/run /webapps/hello/media") == (
        "root:hello 750\nhello:www-data 750\nhello:www-data 750")
    assert pyinfra(deployed["inventory"]).changed() == []


def test_programs_changed_by_hand_are_put_back_without_a_reload(deployed):
    container = deployed["container"]
    master = master_pid(container, "hello")
    sh(container, "chmod 777 /webapps/hello/bin/manage && echo 'echo by hand' >> /webapps/hello/bin/compress-static")

    run = pyinfra(deployed["inventory"])

    # One operation wrote both; what reacts to the settings and the start script did not fire.
    assert run.changed() == ["Django app | hello: configuration and programs", "History | hello: history"]
    assert sh(container, "stat -c '%U:%G %a' /webapps/hello/bin/manage /webapps/hello/bin/compress-static") == (
        "root:hello 750\nroot:hello 750")
    assert "by hand" not in sh(container, "cat /webapps/hello/bin/compress-static")
    assert not sh(container, "ls /webapps/hello/bin /webapps/hello/conf/next | grep djangohost-new || true")
    assert master_pid(container, "hello") == master
    assert pyinfra(deployed["inventory"]).changed() == []


def test_code_change_restarts_only_that_app(deployed):
    container, port = deployed["container"], deployed["port"]
    goodbye_pid = master_pid(container, "goodbye")
    goodbye_workers = sh(container, f"ps -o pid= --ppid {goodbye_pid}")
    views = deployed["workdir"] / "hello" / "hello" / "views.py"
    views.write_text(views.read_text().replace("Hello from djangohost", "Hello again"))

    run = pyinfra(deployed["inventory"])

    changed = run.changed()
    assert "Supervisor program | hello: reload gunicorn" in changed
    assert not [name for name in changed if "goodbye" in name], changed
    assert "Nginx sites | Nginx reload" not in changed
    assert "Hello again" in http_get(port, "hello.test")[1]
    assert master_pid(container, "goodbye") == goodbye_pid
    assert sh(container, f"ps -o pid= --ppid {goodbye_pid}") == goodbye_workers
    assert "Goodbye from djangohost" in http_get(port, "goodbye.test")[1]


def test_a_reload_lost_to_a_failed_run_is_done_by_the_next(deployed):
    """A run that shipped hello's new code but died before reloading Gunicorn: the next run,
    with nothing left to write, still reloads it."""
    container, port = deployed["container"], deployed["port"]
    master = master_pid(container, "hello")
    workers = sh(container, f"ps -o pid= --ppid {master}").split()
    views = deployed["workdir"] / "hello" / "hello" / "views.py"
    views.write_text(views.read_text().replace("Hello again", "Hello, third release"))
    # The reload fails: supervisorctl is briefly missing.
    sh(container, "mv /usr/bin/supervisorctl /usr/bin/supervisorctl.off")
    try:
        failed = pyinfra(deployed["inventory"], check=False)
    finally:
        sh(container, "mv /usr/bin/supervisorctl.off /usr/bin/supervisorctl")
    assert failed.returncode != 0
    assert "third release" in sh(container, "cat /webapps/hello/current/hello/views.py")
    assert sh(container, f"ps -o pid= --ppid {master}").split() == workers

    run = pyinfra(deployed["inventory"])

    assert run.changed() == ["Supervisor program | hello: reload gunicorn", "Health gate | hello: health gate",
                             "History | hello: history"]
    assert master_pid(container, "hello") == master, sh(
        container, "tail -n 40 /var/log/supervisor/supervisord.log /webapps/hello/logs/gunicorn.log", check=False)
    assert not set(sh(container, f"ps -o pid= --ppid {master}").split()) & set(workers)
    for _ in range(10):
        assert "Hello, third release" in http_get(port, "hello.test")[1]
