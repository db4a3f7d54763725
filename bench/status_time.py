"""Time the status view (deploys/status.py) on one container running several apps.

    .venv/bin/python -m bench.status_time [--apps 6] [--runs 5]

Deploys N copies of the hello example (app1 ... appN, domains app1.test ...) on a fresh
container, then times `pyinfra INVENTORY deploys/status.py` and prints the median.
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
from tests.helpers import EXAMPLES, REPO, write_inventory

CONTAINER = "djangohost-bench-status"


def pyinfra(inventory: Path, deploy: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inventory), deploy],
                   cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--apps", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    targets.ensure_docker()
    targets.start_container(CONTAINER)
    apps = [{"name": f"app{i}", "domains": [f"app{i}.test"], "source": str(EXAMPLES / "hello"),
             "workers": 2} for i in range(1, args.apps + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        inventory = write_inventory(Path(tmp) / "inventory.py", CONTAINER, apps)
        deploy = pyinfra(inventory, "deploys/site.py")
        status = [pyinfra(inventory, "deploys/status.py") for _ in range(args.runs)]
        noop = [pyinfra(inventory, "deploys/site.py") for _ in range(args.runs)]
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)
    print(f"machine: {machine()}")
    print(f"first deploy, {args.apps} apps:  {deploy:6.1f} s")
    print(f"status view, {args.apps} apps:   median {statistics.median(status):5.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in status)})")
    print(f"no-op re-run, {args.apps} apps:  median {statistics.median(noop):5.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in noop)})")


if __name__ == "__main__":
    main()
