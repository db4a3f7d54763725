"""The Python programs djangohost ships to hosts (templates/**/*.py), run here as they run there:
what decides a virtualenv, the static files' publication, and the health checks."""

from __future__ import annotations

import http.server
import json
import logging
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploys.components.app.source import venv_packages
from deploys.model.inventory import host_settings
from deploys.model.programs import TEMPLATES, program
from tests.helpers import EXAMPLES, load_apps

dependencies = program("app/dependencies.py")
publish = program("app/publish-static.py")
health = program("health/health.py")


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def found(root: Path, project_dir: str = "", requirements: str | None = None):
    return dependencies.find(dependencies.from_directory(str(root)), project_dir, requirements)


def test_every_program_passes_its_linters():
    programs = sorted(TEMPLATES.rglob("*.py"))
    assert programs
    subprocess.run([sys.executable, "-m", "ruff", "check", *map(str, programs)], check=True)
    subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", *map(str, programs)], check=True,
                   stdout=subprocess.DEVNULL)


def test_a_requirements_tree_is_read_whole(tmp_path):
    root = tree(tmp_path, {
        "requirements.txt": "-r requirements/base.txt\n--constraint=requirements/pins.txt  # pinned\n",
        "requirements/base.txt": "Django>=5.2 \\\n  ,<6\n-r extra.txt\ngunicorn==22.0.0\n",
        "requirements/extra.txt": "six\n-e ./vendored\n--index-url https://example.test/simple\n",
        "requirements/pins.txt": "psycopg==3.2.1\n",
    })
    deps = found(root)
    assert deps.mode == "requirements" and deps.main == "requirements.txt"
    assert sorted(deps.files) == ["requirements.txt", "requirements/base.txt", "requirements/extra.txt",
                                  "requirements/pins.txt"]
    # A constraint is not asked for: djangohost's driver is still added; the project's Gunicorn wins.
    assert deps.names == {"django", "gunicorn", "six"}
    assert dependencies.added(deps.names, ["gunicorn==23.0.0", "psycopg[binary]>=3.2,<4"]) == [
        "psycopg[binary]>=3.2,<4"]
    before = deps.digest
    (root / "requirements/extra.txt").write_text("six\nhumanize\n")
    assert found(root).digest != before  # a change in an included file is a new virtualenv


@pytest.mark.parametrize(("names", "extra"), [
    (set(), ["gunicorn==23.0.0", "psycopg[binary]>=3.2,<4"]),
    ({"gunicorn"}, ["psycopg[binary]>=3.2,<4"]),  # the project's Gunicorn, at its version
    ({"psycopg"}, ["gunicorn==23.0.0", "psycopg[binary]"]),  # psycopg 3 needs an implementation
    ({"psycopg", "psycopg-binary"}, ["gunicorn==23.0.0"]),
    ({"psycopg2-binary"}, ["gunicorn==23.0.0"]),  # Django uses psycopg2 as well
])
def test_djangohost_adds_only_what_the_project_does_not_ask_for(names, extra):
    assert dependencies.added(names, ["gunicorn==23.0.0", "psycopg[binary]>=3.2,<4"]) == extra


def test_one_requirements_file_keeps_the_name_it_had():
    import hashlib
    hello = Path(__file__).resolve().parents[2] / "examples/hello"
    assert found(hello).digest == hashlib.sha256((hello / "requirements.txt").read_bytes()).hexdigest()


def test_an_include_outside_the_repository_is_refused(tmp_path):
    root = tree(tmp_path / "repo", {"requirements.txt": "-r ../secrets.txt\n"})
    (tmp_path / "secrets.txt").write_text("x\n")
    with pytest.raises(dependencies.Refused, match="outside the repository"):
        found(root)
    root = tree(tmp_path / "missing", {"requirements.txt": "-r base.txt\n"})
    with pytest.raises(dependencies.Refused, match="base.txt .included by requirements.txt. is not in the repository"):
        found(root)


def test_the_nearest_dependency_files_above_manage_py_decide(tmp_path):
    root = tree(tmp_path, {
        "pyproject.toml": '[project]\nname = "x"\nversion = "1"\ndependencies = ["Django>=5.2"]\n',
        "uv.lock": 'version = 1\n[[package]]\nname = "Django"\nversion = "5.2.1"\n',
        "src/manage.py": "", "docs/requirements.txt": "sphinx\n",
    })
    deps = found(root, "src")
    assert (deps.mode, deps.root, sorted(deps.files), deps.names) == ("uv.lock", "", ["pyproject.toml", "uv.lock"],
                                                                      {"django"})
    (root / "src/requirements.txt").write_text("Django\n")
    assert found(root, "src").mode == "requirements"
    (root / "uv.lock").unlink()
    (root / "src/requirements.txt").unlink()
    deps = found(root, "src")
    assert (deps.mode, deps.main) == ("pyproject", "pyproject.toml")
    # Named by the inventory: that file, from the repository's root.
    assert found(root, "src", "docs/requirements.txt").names == {"sphinx"}
    # Without requirements.txt, a server's requirements file; without any, a reason.
    server = tree(tmp_path / "server", {"manage.py": "", "requirements/production.txt": "-r base.txt\n",
                                        "requirements/base.txt": "Django\n", "requirements/local.txt": "pytest\n"})
    assert (found(server).main, found(server).names) == ("requirements/production.txt", {"django"})
    with pytest.raises(dependencies.Refused, match="name the file to install in the app's `requirements` field"):
        found(tree(tmp_path / "bare", {"manage.py": ""}))


POETRY_LOCK = """
[[package]]
name = "Django"
version = "5.2.1"
[package.dependencies]
asgiref = ">=3.8.1"
tzdata = {version = "*", markers = "sys_platform == \\"win32\\""}
argon2-cffi = {version = ">=19.1.0", optional = true}
[package.extras]
argon2 = ["argon2-cffi (>=19.1.0)"]

[[package]]
name = "asgiref"
version = "3.8.1"

[[package]]
name = "tzdata"
version = "2025.1"
markers = "sys_platform == \\"win32\\""

[[package]]
name = "argon2-cffi"
version = "23.1.0"

[[package]]
name = "pytest"
version = "8.3.0"

[[package]]
name = "shop-theme"
version = "0.1.0"
[package.source]
type = "git"
url = "https://git.test/theme.git"
reference = "main"
resolved_reference = "0123abc"

[[package]]
name = "payments"
version = "1.0"
[package.source]
type = "directory"
url = "libs/payments"
"""


def test_a_poetry_project_gets_its_main_dependencies_at_their_locked_versions(tmp_path):
    root = tree(tmp_path, {
        "pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.11"\nDjango = {version = "^5.2", extras = '
                          '["argon2"]}\nshop-theme = {git = "https://git.test/theme.git"}\npayments = {path = '
                          '"libs/payments"}\n[tool.poetry.group.dev.dependencies]\npytest = "^8"\n',
        "poetry.lock": POETRY_LOCK, "requirements.txt": "Django\n", "manage.py": "",
    })
    deps = found(root)
    assert (deps.mode, sorted(deps.files)) == ("poetry.lock", ["poetry.lock", "pyproject.toml"])
    assert deps.names == {"django", "asgiref", "tzdata", "argon2-cffi", "shop-theme", "payments"}  # no pytest
    assert deps.pinned == [
        "argon2-cffi==23.1.0", "asgiref==3.8.1", "Django==5.2.1", f"payments @ file://{Path.cwd()}/libs/payments",
        "shop-theme @ git+https://git.test/theme.git@0123abc", 'tzdata==2025.1 ; sys_platform == "win32"']
    # PEP 621 dependencies, as Poetry 2 writes them, are read alike.
    (root / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["django[argon2]>=5.2"]\n')
    assert found(root).names == {"django", "asgiref", "tzdata", "argon2-cffi"}


def test_a_pipenv_project_gets_its_default_packages_at_their_locked_versions(tmp_path):
    lock = {"default": {
        "django": {"version": "==5.2.1", "markers": "python_version >= '3.10'"},
        "theme": {"git": "https://git.test/theme.git", "ref": "0123abc"},
        "site": {"path": ".", "editable": True},
        "celery": {"version": "==5.4.0", "extras": ["redis"]},
    }, "develop": {"pytest": {"version": "==8.3.0"}}}
    root = tree(tmp_path, {"Pipfile": "[packages]\n", "Pipfile.lock": json.dumps(lock), "manage.py": ""})
    deps = found(root)
    assert (deps.mode, sorted(deps.files), deps.names) == ("Pipfile.lock", ["Pipfile.lock"],
                                                           {"django", "theme", "site", "celery"})
    assert deps.pinned == ["celery[redis]==5.4.0", "django==5.2.1 ; python_version >= '3.10'",
                           "theme @ git+https://git.test/theme.git@0123abc"]  # not the project itself
    (root / "Pipfile.lock").write_text(json.dumps({"default": {"x": {"path": "../outside"}}}))
    with pytest.raises(dependencies.Refused, match="outside the repository"):
        found(root)
    (root / "Pipfile.lock").write_text("{not json")
    with pytest.raises(dependencies.Refused, match="Pipfile.lock cannot be read"):
        found(root)


def test_the_host_reads_a_commit_as_the_plan_reads_its_files(tmp_path):
    """A git source's dependencies are read on the host from its mirror (digest --git): they must
    name the virtualenv the plan names for the same files."""
    root = tree(tmp_path, {"requirements.txt": "-r base.txt\n", "base.txt": "Django\n", "app/manage.py": ""})
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    host = subprocess.run([sys.executable, str(TEMPLATES / "app/dependencies.py"), "digest", "--git", "HEAD",
                           "--project-dir", "app"], cwd=root, capture_output=True, text=True, check=True)
    plan = found(root, "app")
    assert host.stdout.strip().split("\t") == ["requirements", plan.digest, "django"]


def test_static_files_are_published_by_content(tmp_path):
    collected = tree(tmp_path / "collected", {"css/site.css": "a", "css/new.css": "n", "js/app.js": "same"})
    static = tree(tmp_path / "static", {"css/site.css": "old", "js/app.js": "same", "css/gone.css": "kept"})
    os.utime(static / "js/app.js", (1000, 1000))
    victim = tree(tmp_path / "victim", {"file": "untouched"})
    (static / "img").symlink_to(victim)  # a link where a directory is published: replaced, not followed
    (collected / "img").mkdir()
    (collected / "img/logo.svg").write_text("<svg/>")
    assert publish.publish(str(collected), str(static)) == 3
    assert (static / "css/site.css").read_text() == "a" and (static / "css/new.css").read_text() == "n"
    assert (static / "js/app.js").stat().st_mtime == 1000  # unchanged: its compressed copies stay
    assert (static / "css/gone.css").read_text() == "kept"  # an earlier release's pages may name it
    assert not (static / "img").is_symlink() and (static / "img/logo.svg").read_text() == "<svg/>"
    assert sorted(p.name for p in victim.iterdir()) == ["file"]
    assert not list(static.rglob("*.djangohost-new"))


class Site(http.server.BaseHTTPRequestHandler):
    """A site that redirects as real ones do."""

    routes = {
        "/": (302, "/accounts/login/?next=/"),
        "/accounts/login/?next=/": (200, None),
        "/broken": (302, "/error/"),
        "/error/": (500, None),
        "/elsewhere": (301, "https://other.test/"),
        "/insecure": (301, "https://app.test/insecure"),
        "/loop": (302, "/loop"),
        "/bad-request": (400, None),
        "/other-domain": (301, "http://www.app.test/"),
    }

    def do_GET(self) -> None:  # noqa: N802
        status, location = self.routes.get(self.path, (404, None))
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def site(tmp_path) -> Iterator[str]:
    path = str(tmp_path / "site.sock")

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):
            request, _ = super().get_request()
            return request, ("local", 0)

    server = Server(path, Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path
    server.shutdown()


@pytest.mark.parametrize(("path", "status", "wrong"), [
    ("/", 200, ""),
    ("/other-domain", 200, ""),  # followed to the app's other domain, then to its login page
    ("/broken", 500, "http://app.test/error/ answered 500"),
    ("/elsewhere", 301, "http://app.test/elsewhere redirects to https://other.test/, which the app does not serve"),
    ("/insecure", 301, "http://app.test/insecure redirects to https://app.test/insecure, which the app does not "
                       "serve (it serves http://app.test, http://www.app.test)"),
    ("/loop", 302, "http://app.test/loop redirects more than 10 times"),
    ("/bad-request", 400, "http://app.test/bad-request answered 400 Bad Request"),
])
def test_the_checks_follow_the_apps_own_redirects_and_judge_the_final_answer(site, path, status, wrong):
    origins = ["http://app.test", "http://www.app.test"]
    answered, url, problem = health.judge("http://app.test", path, origins, site)
    assert answered == status
    assert (f"{url} {problem}" if problem else "").startswith(wrong) and bool(problem) == bool(wrong)


def test_a_release_answering_500_is_judged_in_a_few_tries(site):
    import time
    started = time.monotonic()
    wrong = health.healthy("/broken", ["http://app.test"], 60, socket_path=site, serving=site)
    assert wrong == {"http://app.test/error/": "answered 500"}
    assert time.monotonic() - started < 5


def test_what_an_app_wrote_is_shown_escaped_from_its_last_traceback():
    lines = ["booting\n", "djangohost: request error in GET /:\n", "Traceback 1\n",
             "djangohost: request error in GET /:\n", "Traceback (most recent call last):\n",
             "RuntimeError: \x1b]0;owned\x07 broken\u2028x\n"]
    shown = health.tail(lines, 30)
    assert shown.startswith("djangohost: request error in GET /:\nTraceback (most recent call last):")
    assert "\x1b" not in shown and "\x07" not in shown and "\u2028" not in shown
    assert "\\x1b]0;owned\\x07 broken\\u2028x" in shown


def test_a_socket_that_refuses_is_said(tmp_path):
    path = tmp_path / "gone.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    assert health.accepting(str(path)) == "Connection refused"


def test_the_release_program_passes_shellcheck(tmp_path):
    from deploys.components.app import release_script
    from tests.helpers import load_apps

    examples = Path(__file__).resolve().parents[2] / "examples"
    apps = load_apps("web1", {"apps": [
        {"name": "ledger", "domains": ["ledger.test"], "source": str(examples / "ledger"), "project_dir": "src",
         "release_commands": ["manage seed --count 'two words'", "python -c 'print(1)'"]},
        {"name": "hello", "domains": ["hello.test"], "source": str(examples / "hello"), "database": False}]})
    scripts = [release_script(app) for app in apps]
    # Each release command reaches bin/run word for word.
    assert "\n\"$run\" manage seed --count 'two words'\n" in scripts[0]
    for index, script in enumerate(scripts):
        path = tmp_path / f"script{index}"
        path.write_text(script)
        subprocess.run(["sh", "-n", str(path)], check=True)
        subprocess.run(["shellcheck", "--shell=sh", str(path)], check=True)


def test_the_health_program_escapes_what_djangohost_safe_escapes():
    safe = program("engine/djangohost-safe.py")
    for code in range(0x3000):
        char = chr(code)
        if char not in "\n\t":
            assert (health.escaped(char) != char) == safe.is_control(char), hex(code)


def test_a_hostile_lock_is_read_in_linear_time_and_refused_when_it_is_no_lock(tmp_path):
    # Thousands of packages each asking for one package with an extra of its own: each package's
    # dependencies are read once, each extra's once.
    count = 3000
    lock = "".join(f'[[package]]\nname = "p{i}"\nversion = "1"\n[package.dependencies]\nhub = '
                   f'{{version = "*", extras = ["e{i}"]}}\n' for i in range(count))
    lock += '[[package]]\nname = "hub"\nversion = "1"\n[package.dependencies]\n' + "".join(
        f'd{i} = "*"\n' for i in range(count)) + "[package.extras]\n" + "".join(
        f'e{i} = ["d{i}"]\n' for i in range(count))
    lock += "".join(f'[[package]]\nname = "d{i}"\nversion = "1"\n' for i in range(count))
    pyproject = "[tool.poetry.dependencies]\n" + "".join(f'p{i} = "*"\n' for i in range(count))
    started = time.monotonic()
    pinned, names = dependencies.poetry_pins(pyproject.encode(), lock.encode(), "")
    assert time.monotonic() - started < 2 and len(names) == 2 * count + 1
    for name, content in [("Pipfile.lock", '{"default": {"x": "1.0"}}'), ("Pipfile.lock", '{"default": []}'),
                          ("poetry.lock", '[[package]]\nname = 1\n')]:
        root = tree(tmp_path / name / content[:8].replace("/", ""), {
            name: content, "manage.py": "", "pyproject.toml": '[tool.poetry.dependencies]\nx = "*"\n'})
        with pytest.raises(dependencies.Refused, match=f"{name} is not a lock file its tool wrote"):
            found(root)
    huge = tree(tmp_path / "huge", {"manage.py": "", "requirements.txt": "#" * (dependencies.MAX_SIZE + 1)})
    with pytest.raises(dependencies.Refused, match="requirements.txt is larger than 16 MiB"):
        found(huge)


def test_a_committed_files_text_is_escaped_in_a_diff(monkeypatch, caplog):
    from deploys.engine import ops
    monkeypatch.setattr(ops, "host", SimpleNamespace(log=lambda text, log: log(text)))
    caplog.set_level(logging.INFO, logger="pyinfra")
    ops._show_diff("hello: requirements/\x1b]0;x\x07.txt", ["django"],
                   "django\n# \x1b]0;owned\x07\x1b[2J \u009b31m\n")
    shown = caplog.text
    assert "\x1b]" not in shown and "\u009b" not in shown and "\\x1b]0;owned" in shown


ASGI = ["gunicorn==23.0.0", "uvicorn-worker==0.4.0", "uvicorn[standard]==0.55.0", "websockets>=10.4",
        "channels-redis>=4.2,<5"]


@pytest.mark.parametrize(("names", "extra"), [
    # uvicorn's standard extras bring websockets; channels-redis only beside Channels.
    (set(), ["gunicorn==23.0.0", "uvicorn-worker==0.4.0", "uvicorn[standard]==0.55.0"]),
    ({"django", "channels"}, ["gunicorn==23.0.0", "uvicorn-worker==0.4.0", "uvicorn[standard]==0.55.0",
                              "channels-redis>=4.2,<5"]),
    # The project's pins win.
    ({"channels", "channels-redis", "uvicorn-worker", "gunicorn"}, ["uvicorn[standard]==0.55.0"]),
    # Its own uvicorn without a WebSocket library would refuse every WebSocket: websockets is added.
    ({"uvicorn"}, ["gunicorn==23.0.0", "uvicorn-worker==0.4.0", "websockets>=10.4"]),
    ({"uvicorn", "wsproto"}, ["gunicorn==23.0.0", "uvicorn-worker==0.4.0"]),
    ({"uvicorn", "websockets"}, ["gunicorn==23.0.0", "uvicorn-worker==0.4.0"]),
])
def test_an_asgi_app_gets_uvicorns_worker_unless_the_project_names_it(names, extra):
    assert dependencies.added(names, ASGI) == extra


def test_the_asgi_packages_are_added_to_asgi_apps_only():
    settings = host_settings("web1", {})
    (chat, hello) = load_apps("web1", {"apps": [
        {"name": "chat", "domains": ["chat.test"], "source": str(EXAMPLES / "chat"), "server": "asgi",
         "broker": True, "database": False},
        {"name": "hello", "domains": ["hello.test"], "source": str(EXAMPLES / "hello")}]})
    assert venv_packages(chat, settings) == ASGI
    assert venv_packages(hello, settings) == ["gunicorn==23.0.0", "psycopg[binary]>=3.2,<4"]
