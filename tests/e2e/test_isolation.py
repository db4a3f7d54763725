"""Attacks through the inventory: each hostile entry must stop the run before anything runs on
the host, with the host, the app and the field named, and leave no trace of what it smuggled in."""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from pathlib import Path

import pytest

from deploys.components.app.source import venv_key, venv_packages
from deploys.model.defaults import UV_VERSION
from deploys.model.inventory import host_settings
from tests.helpers import (
    as_user,
    copy_example,
    http_get,
    load_apps,
    pyinfra,
    sh,
    wait_for,
    write_groups,
    write_inventory,
)

pytestmark = pytest.mark.e2e

# What a command smuggled into a root shell leaves behind (wherever it runs, when it cannot name
# a path: a file name holds no slash).
PWNED = "djangohost-pwned"
SMUGGLED = f"touch /tmp/{PWNED}"


@pytest.fixture(scope="module")
def target(container_factory, tmp_path_factory):
    return {"container": container_factory(), "workdir": tmp_path_factory.mktemp("isolation")}


def hello(target, **fields) -> dict:
    source = target["workdir"] / "hello"
    if not source.exists():
        copy_example("hello", target["workdir"])
    return {"name": "hello", "domains": ["hello.test"], "source": str(source), **fields}


def attack(target, apps: list[dict], **host_data) -> str:
    """Run the hostile inventory; it must fail without touching the host. Returns its output."""
    container = target["container"]
    inventory = write_inventory(target["workdir"] / "inventory.py", container, apps, **host_data)
    run = pyinfra(inventory, check=False, json_results=False)
    assert run.returncode != 0
    assert sh(container, f"find / -xdev -name {PWNED}; ls /webapps 2>/dev/null; getent group webapps; "
                         "dpkg-query -W -f='${Status}' nginx 2>/dev/null", check=False) == ""
    return run.output


def test_a_host_setting_cannot_reach_a_root_shell(target):
    out = attack(target, [hello(target)], djangohost_group=f"webapps;{SMUGGLED}")
    assert f"host @docker/{target['container']}, field djangohost_group:" in out


def test_a_package_name_cannot_reach_a_root_shell(target):
    # The packages root installs in the background (deploys.components.base) are named on its command line.
    out = attack(target, [hello(target)], djangohost_packages=["nginx", f"x;{SMUGGLED}"])
    assert f"host @docker/{target['container']}, field djangohost_packages:" in out


def test_a_requirements_path_cannot_reach_a_root_shell(target):
    # The inventory's author may name any file of the source, however it is called.
    name = f"r.txt;touch {PWNED}"
    (Path(hello(target)["source"]) / name).write_text("Django>=5.2,<5.3\n")
    out = attack(target, [hello(target, requirements=name)])
    assert "app hello, field requirements:" in out


def test_a_requirements_path_must_lie_inside_the_source(target):
    out = attack(target, [hello(target, requirements="../../../../etc/hostname")])
    assert "app hello, field requirements:" in out


@pytest.mark.parametrize("name", ["template1", "postgres", "pg_monitor", "default", "mysql"])
def test_names_the_host_already_uses_are_refused(target, name):
    out = attack(target, [hello(target, name=name)])
    assert f"app {name}, field name:" in out


def test_an_environment_value_cannot_add_a_line(target):
    out = attack(target, [hello(target, env={"GREETING": "hi\nSECRET_KEY=known"})])
    assert "app hello, field env: GREETING" in out


@pytest.fixture(scope="module")
def site(deploy_examples):
    return deploy_examples("isolation-site", {"hello": {}, "goodbye": {}})


def test_nginx_follows_no_link_to_another_apps_files(site):
    container, port = site["container"], site["port"]
    sh(container, "runuser -u hello -- sh -c 'echo hello-private > /webapps/hello/media/private.txt'")
    assert http_get(port, "hello.test", "/media/private.txt") == (200, "hello-private\n")
    # goodbye's user cannot read hello's media, but Nginx (www-data) could, through goodbye's link.
    sh(container, "runuser -u goodbye -- ln -s /webapps/hello/media/private.txt /webapps/goodbye/media/stolen.txt && "
                  "runuser -u goodbye -- ln -s /webapps/hello/static /webapps/goodbye/static/stolen")
    for path in ("/media/stolen.txt", "/static/stolen/hello/site.css"):
        status, body = http_get(port, "goodbye.test", path)
        assert status == 403 and "hello" not in body, (path, status, body)
    # A link of the app to its own file is followed.
    sh(container, "runuser -u goodbye -- sh -c 'echo mine > /webapps/goodbye/media/own.txt && "
                  "ln -s own.txt /webapps/goodbye/media/alias.txt'")
    assert http_get(port, "goodbye.test", "/media/alias.txt") == (200, "mine\n")


def test_uploaded_html_or_svg_cannot_run_script_in_the_apps_origin(site):
    container = site["container"]
    sh(container, "runuser -u hello -- sh -c \"echo '<svg xmlns=\\\"http://www.w3.org/2000/svg\\\">"
                  "<script>alert(document.cookie)</script></svg>' > /webapps/hello/media/avatar.svg\"")
    headers = sh(container, "curl -sI -H 'Host: hello.test' http://127.0.0.1/media/avatar.svg")
    assert re.search(r"^X-Content-Type-Options: nosniff\r?$", headers, re.M | re.I), headers
    assert re.search(r"^Content-Security-Policy: .*\bsandbox\b", headers, re.M | re.I), headers
    # Static files (the app's own) stay as they were.
    assert "sandbox" not in sh(container, "curl -sI -H 'Host: hello.test' http://127.0.0.1/static/hello/site.css")


def test_manage_started_from_roots_terminal_gets_a_terminal_of_its_own(site):
    # Root runs bin/manage in a terminal; the app's code must hold no descriptor of that
    # terminal, through which it could type into root's session (TIOCSTI) or read it.
    program = "import os; print('app:', *sorted({os.ttyname(fd) for fd in (0, 1, 2) if os.isatty(fd)}))"
    out = sh(site["container"], f"script -qec \"tty; /webapps/hello/bin/manage shell -c \\\"{program}\\\"\" /dev/null")
    root_tty = out.splitlines()[0].strip()
    app_ttys = re.search(r"app: (.*)$", out, re.M)
    assert root_tty.startswith("/dev/pts/") and app_ttys and app_ttys.group(1).split(), out
    assert root_tty not in app_ttys.group(1).split(), out


# A package whose build script leaves the uid it ran as, and tries to write where only root can.
EVIL_SETUP = """
import os, time
from setuptools import setup
open(f"/tmp/built-by-{os.getuid()}", "w").close()
try:
    open("/etc/djangohost-pwned", "w").close()
except OSError:
    pass
# A process that outlives the build, waiting for its moment (in a session of its own).
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 1024)
        time.sleep(3600)
    os._exit(0)
setup(name="evil", version="1.0", py_modules=[])
"""


def test_no_build_script_runs_as_root(site):
    container = site["container"]
    sh(container, f"mkdir -p /srv/evil && printf '%s' {shlex.quote(EVIL_SETUP)} > /srv/evil/setup.py && "
                  "chmod -R a+rwX /srv/evil")  # setuptools writes its metadata beside setup.py
    requirements = Path(site["workdir"]) / "hello" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "evil @ file:///srv/evil\n")
    pyinfra(site["inventory"])
    assert sh(container, "ls /etc/djangohost-pwned 2>&1 || true").endswith("No such file or directory")
    builder_uid = sh(container, "id -u _hello")
    assert sh(container, "ls /tmp | grep built-by-") == f"built-by-{builder_uid}"
    # What it built is root's, and the app cannot change it.
    venv = sh(container, "readlink -f /webapps/hello/venv")
    assert sh(container, f"stat -c '%U %G %a' {venv}") == "root hello 750"
    assert sh(container, f"find {venv} ! -user root | head -n 3") == ""
    denied = sh(container, f"runuser -u hello -- touch {venv}/bin/python-extra 2>&1 || true")
    assert "Permission denied" in denied
    assert sh(container, f"{venv}/bin/python -c 'import importlib.metadata as m; print(m.version(\"evil\"))'") == "1.0"
    # The build ended every process of its identity: nothing it started waits for root's next step
    # (a killed one may stay a zombie here, where the container's first process reaps nothing).
    assert sh(container, "ps -u _hello -o stat=,pid=,args= | grep -v '^Z' || true") == ""


def test_the_build_identity_cannot_change_the_virtualenv_through_its_cache(site):
    # The virtualenv's files are hard links to the build identity's uv cache: the same files
    # (those it could link: a file root took already is copied into a later virtualenv).
    container = site["container"]
    venv = sh(container, "readlink -f /webapps/hello/venv")
    module = sh(container, f"find {venv}/lib -type f -links +1 | head -n 1")
    cached = sh(container, f"find /var/lib/djangohost/build/hello -inum $(stat -c %i {module})")
    assert cached.startswith("/var/lib/djangohost/build/hello/"), cached  # a link, or this proves nothing
    before = sh(container, f"sha256sum {module}")

    tries = sh(container, f"runuser -u _hello -- sh -c 'echo raise SystemExit >> {cached}; chmod 666 {cached}; "
                          f"ln {cached} /var/lib/djangohost/build/hello/again' 2>&1 || true")

    assert tries.count("Operation not permitted") + tries.count("Permission denied") == 3, tries
    assert sh(container, f"stat -c '%U %G' {module}") == "root root"
    assert sh(container, f"sha256sum {module}") == before


# An index that offers uv only as source, whose build backend writes where only root can.
HOSTILE_UV = {
    "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
    "backend.py": 'open("/etc/djangohost-pwned-by-uv", "w").close()\n',
}


def test_uv_is_never_built_from_source_as_root(site):
    # root installs uv once per host; a source-only uv on the host's index must not run as root.
    container = site["container"]
    package = f"/srv/index/uv-{UV_VERSION}"
    files = " && ".join(f"printf '%s' {shlex.quote(text)} > {package}/{name}" for name, text in HOSTILE_UV.items())
    sh(container, f"mkdir -p {package} && {files} && tar -C /srv/index -czf {package}.tar.gz uv-{UV_VERSION} && "
                  "cp /etc/pip.conf /etc/pip.conf.kept && "
                  "printf '[global]\\nno-index = true\\nfind-links = /srv/index\\n' > /etc/pip.conf && "
                  "rm -rf /usr/local/lib/djangohost/uv-*")
    try:
        run = pyinfra(site["inventory"], check=False, json_results=False)
        assert sh(container, "ls /etc/djangohost-pwned-by-uv 2>&1 || true").endswith("No such file or directory")
        assert run.returncode != 0 and f"uv=={UV_VERSION}" in run.output, run.output[-3000:]
    finally:
        sh(container, "mv /etc/pip.conf.kept /etc/pip.conf && rm -f /etc/djangohost-pwned-by-uv")
    # With the host's index back, uv's wheel is installed and the apps still answer.
    pyinfra(site["inventory"])
    assert sh(container, "ls -d /usr/local/lib/djangohost/uv-*") == f"/usr/local/lib/djangohost/uv-{UV_VERSION}"
    assert http_get(site["port"], "hello.test")[0] == 200


# Prepended to the release's WSGI module: in the candidate check's Gunicorn it leaves who it runs
# as, and tries to write where only root can.
HOSTILE_WSGI = """
import os, sys
if "DJANGOHOST_RELEASE" in os.environ:  # the candidate check: a release not live yet
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    with open(f"/tmp/candidate-ran-as-{os.getpid()}", "w") as out:
        out.write(f"{os.getuid()} {os.getgid()} {sorted(os.getgroups())} {status['CapEff'].strip()} "
                  f"{os.environ['HOME']}\\n")
    try:
        open("/etc/djangohost-pwned-by-candidate", "w").close()
    except OSError:
        pass
"""


def test_the_candidate_check_runs_the_release_as_the_apps_user_only(site):
    container = site["container"]
    wsgi = Path(site["workdir"]) / "hello" / "hello" / "wsgi.py"
    original = wsgi.read_text()
    wsgi.write_text(HOSTILE_WSGI + original)
    try:
        pyinfra(site["inventory"])
    finally:
        wsgi.write_text(original)
    assert sh(container, "ls /etc/djangohost-pwned-by-candidate 2>&1 || true").endswith("No such file or directory")
    uid, gid = sh(container, "id -u hello"), sh(container, "id -g hello")
    groups = sorted(int(group) for group in sh(container, "id -G hello").split())
    ran_as = set(sh(container, "cat /tmp/candidate-ran-as-*").splitlines())
    assert ran_as == {f"{uid} {gid} {groups} 0000000000000000 /webapps/hello"}


# --- Issue #30: what an app's user, its build identity or a pasted value can do to root --------


def test_a_hostile_private_address_cannot_reach_a_root_shell(target, container_factory):
    # An IPv6 zone id may hold anything but %: Python's ipaddress accepts this address, which went
    # unquoted into root's commands (the certificate's subject), pg_hba.conf and Nginx files.
    app_server = container_factory()
    hostile = f"fe80::1%eth0$(touch {PWNED})"  # no slash: ipaddress refuses one
    inventory = target["workdir"] / "hostile-address.py"
    app_data = {"apps": [hello(target, backup=False)], "private_address": "10.0.0.2"}
    write_groups(inventory, {"db": [(target["container"], {"private_address": hostile})],
                             "app": [(app_server, app_data)]})
    run = pyinfra(inventory, check=False, json_results=False, timeout=600)
    for container in (target["container"], app_server):
        assert sh(container, f"find / -xdev -name {PWNED}; dpkg-query -W -f='${{Status}}' postgresql nginx "
                             "2>/dev/null", check=False) == "", container
    assert run.returncode != 0
    assert f"host @docker/{target['container']}, field private_address:" in run.output, run.output[-3000:]


def test_a_secret_is_masked_whole_in_a_dry_runs_diff(target):
    # Python's splitlines() breaks at \v, \f, \x1c-\x1e, \x85, U+2028 and U+2029 too: the diff
    # showed what followed such a character in a secret, unmasked.
    container = target["container"]
    secret = "shown-before\x0bTAIL-OF-THE-SECRET"
    inventory = write_inventory(target["workdir"] / "secret.py", container, [hello(target, secrets={"TOKEN": secret})])
    run = pyinfra(inventory, "--dry", "--diff", check=False, json_results=False)
    assert "TAIL-OF-THE-SECRET" not in run.output
    assert run.returncode != 0 and "app hello, field secrets: TOKEN" in run.output, run.output[-3000:]
    assert sh(container, "ls /webapps 2>/dev/null; dpkg-query -W -f='${Status}' nginx 2>/dev/null",
              check=False) == ""


def with_env(site: dict, app: str, **env: str) -> Path:
    """The site's inventory with `env` for `app`: a change its Gunicorn takes with a reload."""
    apps = [{**entry, "env": env} if entry["name"] == app else entry for entry in site["apps"]]
    return write_inventory(Path(site["workdir"]) / f"env-{app}.py", site["container"], apps)


def test_the_reload_marker_cannot_hang_roots_reload(site):
    # Root's bin/gunicorn-reload read the marker the app's Gunicorn writes in run/: as a FIFO, the
    # read waited for a writer forever, holding the host's lock; as a link to /dev/zero, it grew
    # until memory ran out.
    container, port = site["container"], site["port"]
    marker = "/webapps/hello/run/gunicorn.reloaded"
    as_user(container, "hello", f"rm -f {marker} && mkfifo {marker}")
    pyinfra(with_env(site, "hello", GREETING="reloaded past a FIFO"), timeout=150)
    assert "reloaded past a FIFO" in http_get(port, "hello.test")[1]
    assert sh(container, f"stat -c %F {marker}") == "regular file"


def test_a_sparse_file_for_a_socket_cannot_stall_roots_reading_of_the_host(site):
    # Root read every path a deploy compares whole, the app's socket among them: a 1 TB file of
    # nothing (sparse, no disk) in its place took sha256sum a quarter of an hour.
    container = site["container"]
    socket = "/webapps/goodbye/run/gunicorn.sock"
    as_user(container, "goodbye", f"rm -f {socket} && truncate -s 1T {socket}")
    try:
        started = time.monotonic()
        pyinfra(site["inventory"], timeout=120)
        assert time.monotonic() - started < 120
    finally:
        sh(container, f"rm -f {socket} && supervisorctl restart goodbye >/dev/null")
    wait_for(lambda: http_get(site["port"], "goodbye.test")[0] == 200)


def test_a_virtualenv_its_build_identity_left_is_never_taken_as_built(site):
    # A failed build leaves its virtualenv to the build identity, which can write its "complete"
    # marker there: root took the identity's directory for a virtualenv it built and owns.
    container = site["container"]
    requirements = Path(site["workdir"]) / "hello" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# a new key\n")
    (app,) = load_apps(container, {"apps": [site["apps"][0]]})
    settings = host_settings(container, {})
    key = venv_key(settings.python, venv_packages(app, settings), hashlib.sha256(requirements.read_bytes()).hexdigest())
    planted = f"/webapps/hello/venvs/{key}"
    sh(container, f"install -d -o _hello -g _hello -m 755 {planted}")  # as a failed build leaves it
    as_user(container, "_hello", f"mkdir -p {planted}/bin && echo {key} > {planted}/.djangohost-complete")
    run = pyinfra(site["inventory"], check=False)
    assert run.returncode == 0, run.output[-3000:]
    venv = sh(container, "readlink -f /webapps/hello/venv")
    assert venv == planted and sh(container, f"find {venv} ! -user root | head -n 3") == ""
    assert http_get(site["port"], "hello.test")[0] == 200


# Prepended to goodbye's WSGI module: its candidate check fails with output that would take over
# the operator's terminal (a title, a cleared screen, a line rewritten).
HOSTILE_OUTPUT = r'''
import sys
sys.stderr.write("\x1b]0;djangohost-pwned\x07\x1b[2J\rall good\n")
raise SystemExit("\x1b[8mhidden")
'''


def test_a_releases_output_reaches_the_operators_terminal_escaped(site):
    wsgi = Path(site["workdir"]) / "goodbye" / "goodbye" / "wsgi.py"
    original = wsgi.read_text()
    wsgi.write_text(HOSTILE_OUTPUT + original)
    try:
        run = pyinfra(site["inventory"], check=False, json_results=False)
    finally:
        wsgi.write_text(original)
    assert run.returncode != 0 and "djangohost-pwned" in run.output, run.output[-3000:]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", run.output), repr(run.output[-2000:])
    assert "\\x1b]0;djangohost-pwned\\x07" in run.output
    # The release was refused: the one live before keeps serving.
    assert http_get(site["port"], "goodbye.test")[0] == 200
