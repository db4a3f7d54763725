"""What the end-to-end tests do as a user would: write an inventory, run the real `pyinfra`
command, and look at the container through docker exec and HTTP on its published port."""

from __future__ import annotations

import base64
import http.client
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploys.components import registry
from deploys.model import inventory, topology
from deploys.model.inventory import App
from deploys.model.topology import Topology

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@dataclass
class Run:
    returncode: int
    output: str  # stdout and stderr of the run
    results: dict | None  # pyinfra's --json results

    def changed(self) -> list[str]:
        """Names of the operations that changed something."""
        if not self.results or not self.results.get("results"):
            return []
        return [op["name"] for op in self.results["results"]["operations"] if op["success"]]

    def planned(self) -> list[str]:
        """Names of the operations a dry run says would change something."""
        assert self.results
        return [op["name"] for op in self.results["plan"]
                if op["hosts_with_change"] or op["hosts_with_conditional_change"]]


def pyinfra(inventory: Path, *args: str, deploy: str = "deploys/site.py", check: bool = True,
            json_results: bool = True, timeout: float | None = None) -> Run:
    """Run the real pyinfra CLI from the repository root, as the README says; with json_results,
    read its --json results (pyinfra then prints no diffs). A dry run goes without -y, which
    would skip the change detection that makes its diffs. A run still going after `timeout`
    seconds is stopped and fails the test (a hang is what an attack on it may cause)."""
    options = [*([] if "--dry" in args else ["-y"]), *(["--json"] if json_results else [])]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pyinfra", *options, str(inventory), deploy, *args],
            cwd=REPO, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as expired:
        partial = (expired.stdout or b"").decode(errors="replace") if isinstance(expired.stdout, bytes) else (
            expired.stdout or "")
        raise AssertionError(f"pyinfra still running after {timeout} s:\n{partial[-3000:]}") from None
    results = None
    # pyinfra's --json document is the last thing on stdout; deploys may print before it.
    start = proc.stdout.rfind('{"plan"')
    if start >= 0:
        try:
            results = json.loads(proc.stdout[start:])
        except json.JSONDecodeError:
            results = None
    # Colour codes out: the text a user reads.
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    run = Run(proc.returncode, output, results)
    if check and proc.returncode != 0:
        raise AssertionError(f"pyinfra failed ({proc.returncode}):\n{run.output[-6000:]}")
    return run


@dataclass(frozen=True)
class Login:
    """How pyinfra reaches a target over SSH: as root, or as the sudo user with `_sudo`."""

    user: str
    port: int
    key: Path

    def host_data(self) -> dict:
        data = {"ssh_hostname": "127.0.0.1", "ssh_port": self.port, "ssh_user": self.user,
                "ssh_key": str(self.key), "ssh_strict_host_key_checking": "no",
                "ssh_known_hosts_file": "/dev/null"}
        return data if self.user == "root" else {**data, "_sudo": True}


def write_inventory(path: Path, container: str, apps: list[dict], login: Login | None = None,
                    **host_data: object) -> Path:
    """An inventory of one host: the container through @docker, or over SSH with `login`."""
    if login is None:
        name, data = f"@docker/{container}", {"apps": apps, **host_data}
    else:
        name, data = container, {**login.host_data(), "apps": apps, **host_data}
    path.write_text(f"targets = [({name!r}, {data!r})]\n")
    return path


def write_groups(path: Path, groups: dict[str, list[tuple[str, dict]]]) -> Path:
    """An inventory of containers reached through @docker, in groups (app, db, lb):
    {group: [(container, host data), ...]}."""
    path.write_text("".join(f"{group} = {[(f'@docker/{container}', data) for container, data in hosts]!r}\n"
                            for group, hosts in groups.items()))
    return path


def copy_example(name: str, dest: Path) -> Path:
    """A copy of an example project that a test may change."""
    target = dest / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def sh(container: str, command: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", "exec", container, "sh", "-c", command],
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{command!r} failed in {container}: {proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


def as_user(container: str, user: str, command: str) -> str:
    """`command` run by the user `user` of the container, as an attacker with its shell would
    (docker exec -u: none of root's descriptors or sessions)."""
    proc = subprocess.run(["docker", "exec", "-u", user, container, "sh", "-c", command],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{user}: {command!r} failed in {container}: {proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


def http_get(port: int, host: str, path: str = "/", auth: tuple[str, str] | None = None) -> tuple[int | None, str]:
    """GET through the container's Nginx on its published port (with `auth`, basic authentication's
    user and password); None when closed unanswered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None, ""
    finally:
        conn.close()


def wait_for(condition, timeout: float = 30, interval: float = 0.5):
    """Poll `condition` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {condition}")
        time.sleep(interval)


def master_pid(container: str, app: str) -> int:
    """The pid of the app's Gunicorn master, as Supervisor reports it."""
    return int(sh(container, f"supervisorctl pid {app}"))


# A git server on a target, for apps with a git source: SSH, a `git` user that only the test's
# deploy key opens, a repository of the hello example, and a work tree to commit from.
GIT_REPO = "/srv/git/shop.git"
GIT_WORK = "/root/shop-work"


def git_server(container: str, workdir: Path) -> Path:
    """Serve the hello example from a git repository on `container`; return the deploy key."""
    sh(container, "apt-get install -y -q git >/dev/null && "
                  "useradd --create-home --shell /bin/sh git && mkdir -p /srv/git /run/sshd && "
                  f"git init --quiet --bare --initial-branch=main {GIT_REPO} && chown -R git: /srv/git && "
                  "chmod 700 /srv/git && { pgrep -x sshd >/dev/null || /usr/sbin/sshd; } && "
                  "git config --global safe.directory '*'")
    subprocess.run(["docker", "cp", f"{EXAMPLES / 'hello'}/.", f"{container}:{GIT_WORK}"], check=True)
    sh(container, f"cd {GIT_WORK} && rm -rf $(find . -name __pycache__) && git init --quiet -b main && "
                  "git -c user.name=t -c user.email=t@test add -A && "
                  "git -c user.name=t -c user.email=t@test commit --quiet -m v1 && "
                  "git config user.name t && git config user.email t@test && "
                  f"git remote add origin {GIT_REPO} && git push --quiet origin main && chown -R git: /srv/git")
    sh(container, "ssh-keygen -q -t ed25519 -N '' -f /root/deploy_key && "
                  "mkdir -p ~git/.ssh && cp /root/deploy_key.pub ~git/.ssh/authorized_keys && "
                  "chown -R git: ~git/.ssh && chmod 700 ~git/.ssh")
    key = workdir / "deploy_key"
    key.write_text(sh(container, "cat /root/deploy_key") + "\n")
    sh(container, "rm /root/deploy_key")
    return key


# A storage host for restic repositories over SFTP: its user `keeper` keeps them in /srv/restic.
RESTIC_USER, RESTIC_ROOT = "keeper", "/srv/restic"


def restic_server(container: str, workdir: Path) -> tuple[Path, str]:
    """Let a new key of `workdir` in as RESTIC_USER over SFTP (sshd started); return the key and
    the container's host key line (`HOST TYPE KEY`), to be pinned."""
    key = workdir / "restic_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    setup = (f"useradd --create-home --shell /bin/sh {RESTIC_USER} && mkdir -p ~{RESTIC_USER}/.ssh {RESTIC_ROOT} && "
             f'echo "$1" >~{RESTIC_USER}/.ssh/authorized_keys && '
             f"chown -R {RESTIC_USER}: ~{RESTIC_USER}/.ssh {RESTIC_ROOT} && "
             f"chmod 700 ~{RESTIC_USER}/.ssh {RESTIC_ROOT} && service ssh start >/dev/null")
    subprocess.run(["docker", "exec", container, "sh", "-ec", setup, "sh", key.with_suffix(".pub").read_text()],
                   check=True, capture_output=True)
    host_key = " ".join(sh(container, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    return key, f"{container} {host_key}"


def git_app(ref: str, deploy_key: Path) -> dict:
    """The source and modules of an app entry deploying `ref` of the git server's repository."""
    return {"source": {"git": f"ssh://git@127.0.0.1{GIT_REPO}", "ref": ref, "deploy_key": str(deploy_key)},
            "wsgi_module": "hello.wsgi", "settings_module": "hello.settings"}


def commit(container: str, old: str, new: str, message: str) -> str:
    """Change the page text in the git server's work tree, push it to main; return the commit."""
    sh(container, f"cd {GIT_WORK} && sed -i {shlex.quote(f's/{old}/{new}/')} hello/views.py && "
                  f"git commit --quiet -am {shlex.quote(message)} && git push --quiet origin HEAD:main && "
                  "chown -R git: /srv/git")
    return sh(container, f"cd {GIT_WORK} && git rev-parse HEAD")


PEBBLE_CONFIG = {"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
                            "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
                            "httpPort": 80, "tlsPort": 443,
                            # as Let's Encrypt's certificates do, pebble's name where to check revocation
                            "ocspResponderURL": "http://pebble:4002",
                            "externalAccountBindingRequired": False}}
PEBBLE_DIRECTORY = "https://pebble:14000/dir"


def start_pebble(pebble: str, *trusting: str) -> None:
    """Run pebble (Let's Encrypt's test server, Debian's package) in the container `pebble`, known
    as `pebble` on its network, where the ACME domains name the hosts that answer the challenges;
    certbot in each of `trusting` trusts its API as it would trust Let's Encrypt's."""
    sh(pebble, "apt-get install -y -q pebble >/dev/null && mkdir -p /etc/pebble && "
               "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 "
               "-subj /CN=pebble -addext subjectAltName=DNS:pebble "
               "-keyout /etc/pebble/key.pem -out /etc/pebble/cert.pem 2>/dev/null && "
               f"echo '{json.dumps(PEBBLE_CONFIG)}' > /etc/pebble/config.json")
    subprocess.run(["docker", "exec", "-d", "-e", "PEBBLE_VA_NOSLEEP=1", "-e", "PEBBLE_WFE_NONCEREJECT=0",
                    pebble, "sh", "-c", "pebble -config /etc/pebble/config.json >/var/log/pebble.log 2>&1"],
                   check=True)
    root = sh(pebble, "cat /etc/pebble/cert.pem")
    for container in trusting:
        sh(container, f"echo '{root}' > /usr/local/share/ca-certificates/pebble.crt && "
                      "update-ca-certificates >/dev/null")


def load_apps(host_name: str, data: Any) -> list[App]:
    """inventory.load_apps with the contract the commands use (every component's part)."""
    return inventory.load_apps(host_name, data, registry.CONTRACT)


def load_inventory(hosts: list[Any]) -> dict[str, list[App]]:
    return inventory.load_inventory(hosts, registry.CONTRACT)


def load_topology(hosts: list[Any]) -> Topology:
    return topology.load_topology(hosts, registry.CONTRACT)
