"""Zero-downtime releases: requests keep succeeding through code and requirements changes, a bad
release never goes live, and rollback is as graceful as a deploy."""

from __future__ import annotations

import pytest

from tests.helpers import http_get, master_pid, pyinfra, sh, wait_for, write_inventory
from tests.load import Load

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hello(deploy_examples):
    site = deploy_examples("releases", {"hello": {"workers": 2, "health_timeout": 20}},
                           djangohost_keep_releases=3)
    return {**site, "source": site["workdir"] / "hello"}


def say(hello, old: str, new: str) -> None:
    views = hello["source"] / "hello" / "views.py"
    views.write_text(views.read_text().replace(old, new))


def live(hello) -> str:
    return sh(hello["container"], "readlink /webapps/hello/current")


def visits(hello) -> int:
    return int(sh(hello["container"], "runuser -u hello -- psql -d hello -XAtc 'select count(*) from hello_visit'"))


def test_code_redeploy_under_load_fails_no_request(hello):
    master = master_pid(hello["container"], "hello")
    say(hello, "Hello from djangohost", "Hello, second release")
    with Load(hello["port"], "hello.test", ("Hello from djangohost", "Hello, second release")) as load:
        pyinfra(hello["inventory"])
    assert load.failed == {} and load.served > 50
    assert load.order == ["Hello from djangohost", "Hello, second release"]
    assert master_pid(hello["container"], "hello") == master  # graceful: the master stayed


def test_requirements_redeploy_under_load_fails_no_request(hello):
    container = hello["container"]
    venv = sh(container, "readlink /webapps/hello/venv")
    (hello["source"] / "requirements.txt").write_text("Django>=5.2,<5.3\nsix==1.16.0\n")
    views = hello["source"] / "hello" / "views.py"
    views.write_text(views.read_text().replace('MESSAGE = "Hello, second release"',
                                               'import six\n\nMESSAGE = f"Hello, six {six.__version__}"'))
    with Load(hello["port"], "hello.test", ("Hello, second release", "Hello, six 1.16.0")) as load:
        pyinfra(hello["inventory"])
    assert load.failed == {} and load.served > 50
    assert load.order == ["Hello, second release", "Hello, six 1.16.0"]
    assert sh(container, "readlink /webapps/hello/venv") != venv  # a new virtualenv, beside the old


def test_a_release_that_fails_to_start_never_goes_live(hello):
    before = live(hello)
    wsgi = hello["source"] / "hello" / "wsgi.py"
    good = wsgi.read_text()
    say(hello, "Hello, six", "Hello, broken six")
    wsgi.write_text(good + "\nraise RuntimeError('this release cannot start')\n")
    try:
        with Load(hello["port"], "hello.test", ("Hello, six 1.16.0", "Hello, broken")) as load:
            run = pyinfra(hello["inventory"], check=False)
    finally:
        wsgi.write_text(good)
        say(hello, "Hello, broken six", "Hello, six")
    assert run.returncode != 0
    assert "the new release of hello is refused, the live one keeps serving" in run.output
    assert "RuntimeError: this release cannot start" in run.output
    assert load.failed == {} and load.seen["Hello, broken"] == 0 and load.seen["Hello, six 1.16.0"] > 0
    assert live(hello) == before


def test_a_release_that_answers_500_never_goes_live(hello):
    before = live(hello)
    say(hello, "def home(request):\n", "def home(request):\n    raise ValueError('every page fails')\n")
    try:
        with Load(hello["port"], "hello.test", ("Hello, six 1.16.0",)) as load:
            run = pyinfra(hello["inventory"], check=False)
    finally:
        say(hello, "def home(request):\n    raise ValueError('every page fails')\n", "def home(request):\n")
    assert run.returncode != 0 and "http://hello.test/ answered 500" in run.output
    assert load.failed == {} and live(hello) == before


def test_a_refused_release_leaves_the_live_configuration_as_it_was(hello):
    container = hello["container"]
    live_conf = "sha256sum /webapps/hello/conf/env /webapps/hello/conf/djangohost_settings.py " \
                "/webapps/hello/conf/gunicorn.conf.py"
    before = sh(container, live_conf)
    # A new environment, settings and Gunicorn config, with a release that cannot start.
    changed = write_inventory(hello["workdir"] / "changed.py", hello["container"],
                              [{**hello["apps"][0], "workers": 3, "env": {"STAGED": "yes"}}],
                              djangohost_keep_releases=3)
    wsgi = hello["source"] / "hello" / "wsgi.py"
    good = wsgi.read_text()
    wsgi.write_text(good + "\nraise RuntimeError('this release cannot start')\n")
    try:
        run = pyinfra(changed, check=False)
    finally:
        wsgi.write_text(good)
    assert run.returncode != 0 and "the new release of hello is refused" in run.output
    assert sh(container, live_conf) == before
    assert "STAGED=yes" in sh(container, "cat /webapps/hello/conf/next/env")  # what the refused release had
    # Restarted, the app runs as it did: the live release with the live configuration.
    sh(container, "supervisorctl restart hello")
    answer = wait_for(lambda: (lambda got: got[0] == 200 and got[1])(http_get(hello["port"], "hello.test")),
                      timeout=30)
    assert "Hello, six 1.16.0" in answer

    pyinfra(changed)  # the code fixed: the configuration goes live with it
    assert "STAGED=yes" in sh(container, "cat /webapps/hello/conf/env")
    assert "workers = 3" in sh(container, "cat /webapps/hello/conf/gunicorn.conf.py")
    pyinfra(hello["inventory"])


def test_rollback_under_load_and_back(hello):
    container = hello["container"]
    pyinfra(hello["inventory"])  # the six release, live and healthy again
    newest = live(hello).rsplit("/", 1)[-1]
    rows = visits(hello)
    with Load(hello["port"], "hello.test", ("Hello, six 1.16.0", "Hello, second release")) as load:
        run = pyinfra(hello["inventory"], "--data", "app=hello", deploy="deploys/rollback.py")
    assert load.failed == {} and load.order == ["Hello, six 1.16.0", "Hello, second release"]
    target = live(hello).rsplit("/", 1)[-1]
    assert run.changed() == [f"hello: static files of {target}", "hello: live release", "hello: live virtualenv",
                             "hello: reload gunicorn", "hello: health gate", "hello: rollback recorded",
                             "hello: history"]
    assert visits(hello) > rows  # the database is left as it is
    # The same command again does not step back a second time.
    stepped_back = live(hello)
    again = pyinfra(hello["inventory"], "--data", "app=hello", deploy="deploys/rollback.py", json_results=False)
    assert live(hello) == stepped_back and "hello is already rolled back from" in again.output
    with Load(hello["port"], "hello.test", ("Hello, second release", "Hello, six 1.16.0")) as load:
        pyinfra(hello["inventory"], "--data", "app=hello", "--data", f"release={newest}",
                deploy="deploys/rollback.py")
    assert load.failed == {} and load.order == ["Hello, second release", "Hello, six 1.16.0"]
    assert live(hello) == f"releases/{newest}"
    assert pyinfra(hello["inventory"]).changed() == []  # the inventory's code is live again
    bad = pyinfra(hello["inventory"], "--data", "app=hello", "--data", "release=nope",
                  deploy="deploys/rollback.py", check=False)
    assert bad.returncode != 0 and "app hello: no release nope" in bad.output
    assert master_pid(container, "hello")


def test_old_releases_and_unused_virtualenvs_are_removed(hello):
    container = hello["container"]
    for n in range(4):
        say(hello, "Hello, six", f"Hello, six ({n})")
        pyinfra(hello["inventory"])
        say(hello, f"Hello, six ({n})", "Hello, six")
    releases = sh(container, "ls /webapps/hello/releases").split()
    assert len(releases) == 3 and live(hello) == f"releases/{releases[-1]}"
    venvs = set(sh(container, "ls /webapps/hello/venvs").split())
    assert venvs == set(sh(container, "cat /webapps/hello/releases/*/.djangohost-venv").split())
