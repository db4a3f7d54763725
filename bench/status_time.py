"""Time the status view (deploys/status.py) on one container running several apps.

    .venv/bin/python -m bench.status_time [--apps 6] [--runs 5]

Deploys N apps from one copy of the hello example (app1 ... appN, domains app1.test ...) on a
fresh container, then times the status view, no-op re-runs (full and --data app=app1), and a
code change shipped to all apps versus to one.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.deploy_times import machine
from tests import targets
from tests.helpers import REPO, copy_example, write_inventory

CONTAINER = "djangohost-bench-status"


def pyinfra(inventory: Path, deploy: str, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inventory), deploy, *args],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout + proc.stderr)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--apps", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    targets.ensure_docker()
    targets.start_container(CONTAINER)
    with tempfile.TemporaryDirectory() as tmp:
        source = copy_example("hello", Path(tmp))
        apps = [{"name": f"app{i}", "domains": [f"app{i}.test"], "source": str(source), "workers": 2}
                for i in range(1, args.apps + 1)]
        inventory = write_inventory(Path(tmp) / "inventory.py", CONTAINER, apps)
        deploy = pyinfra(inventory, "deploys/site.py")
        status = [pyinfra(inventory, "deploys/status.py") for _ in range(args.runs)]
        noop = [pyinfra(inventory, "deploys/site.py") for _ in range(args.runs)]
        targeted = [pyinfra(inventory, "deploys/site.py", "--data", "app=app1") for _ in range(args.runs)]
        # One edit of the shared source changes every app: ship it to all, then to one.
        views = source / "hello" / "views.py"
        views.write_text(views.read_text().replace("Hello from djangohost", "Hello, all"))
        ship_all = pyinfra(inventory, "deploys/site.py")
        views.write_text(views.read_text().replace("Hello, all", "Hello, one"))
        ship_one = pyinfra(inventory, "deploys/site.py", "--data", "app=app1")
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)
    print(f"machine: {machine()}")
    print(f"first deploy, {args.apps} apps:  {deploy:6.1f} s")
    print(f"status view, {args.apps} apps:   median {statistics.median(status):5.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in status)})")
    print(f"no-op re-run, {args.apps} apps:  median {statistics.median(noop):5.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in noop)})")
    print(f"code change shipped to all {args.apps} apps:  {ship_all:5.2f} s")
    print(f"code change shipped to one (--data app=app1):  {ship_one:5.2f} s")
    print(f"no-op targeted run (--data app=app1) of {args.apps}:  median {statistics.median(targeted):5.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in targeted)})")


if __name__ == "__main__":
    main()
