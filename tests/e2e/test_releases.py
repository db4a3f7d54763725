"""Zero-downtime releases: requests keep succeeding through code and requirements changes, a bad
release never goes live, and rollback is as graceful as a deploy."""

from __future__ import annotations

import pytest

from tests.helpers import master_pid, pyinfra, sh
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


def test_rollback_under_load_and_back(hello):
    container = hello["container"]
    pyinfra(hello["inventory"])  # the six release, live and healthy again
    newest = live(hello).rsplit("/", 1)[-1]
    rows = visits(hello)
    with Load(hello["port"], "hello.test", ("Hello, six 1.16.0", "Hello, second release")) as load:
        run = pyinfra(hello["inventory"], "--data", "app=hello", deploy="deploys/rollback.py")
    assert load.failed == {} and load.order == ["Hello, six 1.16.0", "Hello, second release"]
    assert run.changed() == ["hello: live release", "hello: live virtualenv", "hello: reload gunicorn",
                             "hello: health gate", "hello: rollback recorded"]
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
