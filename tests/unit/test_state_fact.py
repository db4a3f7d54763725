"""HostState parses what its command printed on real containers (captured in facts/*.json)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from deploys.engine import safe
from facts.state import EnvFileState, HostState, PathsState, PathState, State

SPECS = Path(__file__).parent / "facts"


def spec(name: str) -> dict:
    return json.loads((SPECS / f"host_state_{name}.json").read_text())


def test_deployed_host():
    state = HostState().process(spec("deployed")["output"])
    assert state.cores == 2 and not state.systemd
    assert state.packages == {"nginx", "supervisor"}
    assert state.users == {"hello": "/webapps/hello"}
    assert state.groups == {"webapps"}
    assert state.running == {"nginx", "supervisor", "postgresql", "cron"}
    assert state.paths["/webapps/hello"] == PathState("dir", "root", "hello", "751")
    assert state.paths["/webapps/hello/current"] == PathState(
        "link", target="releases/20261201T024712-016732c45a81")
    conf = state.paths["/webapps/hello/conf/gunicorn.conf.py"]
    assert (conf.kind, conf.owner, conf.group, conf.mode, len(conf.sha256)) == ("file", "root", "hello", "640", 64)
    assert "/webapps/nope" not in state.paths
    env = state.env_files["/webapps/hello/conf/env"]
    assert isinstance(env, EnvFileState) and env.has_secret_key
    assert env.public_sha256 != env.sha256


def test_fresh_host_is_empty_not_an_error():
    assert HostState().process(spec("fresh")["output"]) == State(cores=2, nginx_version=(1, 22, 1), debian_version=12)
    assert HostState().process([]) == State()


def test_command_is_valid_sh_and_quotes_its_arguments(tmp_path):
    command = HostState().command(**spec("deployed")["command_args"])
    subprocess.run(["sh", "-n", "-c", command], check=True)
    weird = HostState().command(paths=["/tmp/a b; rm -rf /"])
    assert "'/tmp/a b; rm -rf /'" in weird
    # Run it for real on this machine: a missing path is simply not reported.
    out = subprocess.run(["sh", "-c", HostState().command(paths=[str(tmp_path / "none"),
                                                               str(tmp_path)])],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    state = HostState().process(out)
    assert list(state.paths) == [str(tmp_path)]


def test_paths_state_reads_the_paths_alone(tmp_path):
    """Run for real on this machine: each path's kind, mode and hash, a missing one left out."""
    secret = tmp_path / "hello.pgpass"
    secret.write_text("db:5432:hello:hello:s3cret\n")
    secret.chmod(0o600)
    command = PathsState().command(paths=[str(secret), str(tmp_path / "none"), str(tmp_path)])
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout.splitlines()
    paths = PathsState().process(out)
    assert list(paths) == [str(secret), str(tmp_path)]
    assert (paths[str(secret)].kind, paths[str(secret)].mode) == ("file", "600")
    assert paths[str(secret)].sha256 == hashlib.sha256(secret.read_bytes()).hexdigest()
    assert paths[str(tmp_path)].kind == "dir"
    assert not any(line.startswith(("login", "package", "running")) for line in out)
    assert PathsState().process([]) == PathsState.default() == {}


def test_releases_know_their_commit_and_virtualenvs_their_key():
    state = HostState().process([
        "release\t/webapps/shop\t20261122T101500-git\t20261122T101500-git\t8e67ff55a4d4e0c1",
        "release\t/webapps/hello\t20261122T101500-3f2a9c1d2e4f\t68a854a128a9\t",
        "venv\t/webapps/shop\t20261122T101500-git\t68a854a128a9",
        "venv\t/webapps/hello\t68a854a128a9\t",  # built before keys were recorded: named by its key
    ])
    assert state.commits == {"/webapps/shop": {"20261122T101500-git": "8e67ff55a4d4e0c1"}}
    assert state.releases["/webapps/hello"] == {"20261122T101500-3f2a9c1d2e4f": "68a854a128a9"}
    assert state.venvs == {"/webapps/shop": {"20261122T101500-git": "68a854a128a9"},
                           "/webapps/hello": {"68a854a128a9": "68a854a128a9"}}


def test_login_user_and_nginx_version_on_debian_12_and_13():
    # As printed under sudo on Debian 13 (nginx installed), and as root on a Debian 12 host
    # before nginx is installed: apt's candidate, or nothing without package lists.
    trixie = HostState().process(["login\tdeploy", "nginx\t1.26.3-3+deb13u1\t13"])
    assert (trixie.login, trixie.nginx_version, trixie.debian_version) == ("deploy", (1, 26, 3), 13)
    bookworm = HostState().process(["login\troot", "nginx\t1.22.1-9+deb12u3\t12"])
    assert (bookworm.login, bookworm.nginx_version, bookworm.debian_version) == ("root", (1, 22, 1), 12)
    unknown = HostState().process(["nginx\t\t12"])
    assert (unknown.nginx_version, unknown.debian_version) == ((), 12)


def test_login_is_the_sudo_user_when_there_is_one():
    command = HostState().command()
    run = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "SUDO_USER": "deploy"})
    assert HostState().process(run.stdout.splitlines()).login == "deploy"


def test_what_another_user_can_write_is_read_safely_or_not_at_all(tmp_path):
    """Run for real: a sparse file of 1 TB is not hashed; in a tree another user writes, a FIFO
    (which sha256sum would wait on forever) and a link are listed but never read; a regular file
    there is hashed by djangohost-safe; a virtualenv root does not own is not taken as built."""
    home = tmp_path / "hello"
    (home / "run").mkdir(parents=True)
    huge = tmp_path / "huge"
    with open(huge, "wb") as file:
        file.truncate(1 << 40)
    os.mkfifo(home / "run" / "fifo")
    (home / "run" / "link").symlink_to(huge)
    (home / "run" / "key").write_text("a key\n")
    for venv, owner in (("builtbyroot", os.getuid()), ("leftbybuilder", 65534)):
        (home / "venvs" / venv).mkdir(parents=True)
        (home / "venvs" / venv / ".djangohost-complete").write_text(f"{venv}\n")
        if os.getuid() == 0:
            os.chown(home / "venvs" / venv, owner, owner)
    tool = tmp_path / "djangohost-safe"
    tool.write_text(f"#!/bin/sh\nexec {sys.executable} {safe.SOURCE} \"$@\"\n")
    tool.chmod(0o755)
    command = HostState().command(paths=[str(huge)], homes=[str(home)], safe_tool=str(tool),
                                  guarded=[(str(home), "run/fifo"), (str(home), "run/link"), (str(home), "run/key")])
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                         check=True, timeout=30).stdout.splitlines()
    state = HostState().process(out)
    assert state.paths[str(huge)].kind == "file" and state.paths[str(huge)].sha256 == ""
    assert state.paths[f"{home}/run/link"].kind == "link" and state.paths[f"{home}/run/link"].sha256 == ""
    assert state.paths[f"{home}/run/key"].sha256 == hashlib.sha256(b"a key\n").hexdigest()
    assert f"{home}/run/fifo" not in state.paths
    expected = {"builtbyroot"} if os.getuid() == 0 else {"builtbyroot", "leftbybuilder"}
    assert set(state.venvs[str(home)]) == expected
