"""Time a full first deploy and a no-op re-run of the two-app demo on one container.

    .venv/bin/python -m bench.deploy_times [--first 3] [--noop 5]

Each first deploy starts from a fresh container (packages, virtualenvs, everything); the no-op
re-runs repeat the same command on the last deployed container. Prints the median of each.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests import targets

REPO = Path(__file__).resolve().parent.parent
CONTAINER = "djangohost-bench"


def deploy(container: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "inventories/demo.py", "deploys/site.py"],
        cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "DJANGOHOST_CONTAINER": container},
    )
    if proc.returncode:
        sys.exit(proc.stdout + proc.stderr)
    return time.perf_counter() - start


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--first", type=int, default=3, help="first deploys (fresh containers)")
    parser.add_argument("--noop", type=int, default=5, help="no-op re-runs")
    args = parser.parse_args()
    targets.ensure_docker()
    targets.ensure_image()

    first = []
    for _ in range(args.first):
        targets.start_container(CONTAINER)
        first.append(deploy(CONTAINER))
    noop = [deploy(CONTAINER) for _ in range(args.noop)]
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)

    print(f"machine: {machine()}")
    print(f"first deploy, two apps:  median {statistics.median(first):6.1f} s  "
          f"(runs: {', '.join(f'{t:.1f}' for t in first)})")
    print(f"no-op re-run, two apps:  median {statistics.median(noop):6.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in noop)})")


if __name__ == "__main__":
    main()
