"""What the end-to-end tests do as a user would: write an inventory, run the real `pyinfra`
command, and look at the container through docker exec and HTTP on its published port."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
            json_results: bool = True) -> Run:
    """Run the real pyinfra CLI from the repository root, as the README says; with json_results,
    read its --json results (pyinfra then prints no diffs). A dry run goes without -y, which
    would skip the change detection that makes its diffs."""
    options = [*([] if "--dry" in args else ["-y"]), *(["--json"] if json_results else [])]
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", *options, str(inventory), deploy, *args],
        cwd=REPO, capture_output=True, text=True,
    )
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


def write_inventory(path: Path, container: str, apps: list[dict], **host_data: object) -> Path:
    data = {"apps": apps, **host_data}
    path.write_text(f"targets = [({f'@docker/{container}'!r}, {data!r})]\n")
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


def http_get(port: int, host: str, path: str = "/") -> tuple[int | None, str]:
    """GET through the container's Nginx on its published port; None when closed unanswered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
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
