"""Time a full first deploy and a no-op re-run of the two-app demo (hello and goodbye) on a container.

    .venv/bin/python -m bench.deploy_times [--first 3] [--noop 5] [--suite trixie] [--via sudo]
    .venv/bin/python -m bench.deploy_times --matrix    # Debian 12 and 13, @docker and SSH with sudo

Each first deploy starts from a fresh container (packages, virtualenvs, everything); the no-op
re-runs repeat the same command on the last deployed container. Prints the median of each.
--via: docker (docker exec as root), root (SSH as root) or sudo (SSH as a user with sudo).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from tests import targets
from tests.helpers import Login, write_inventory

REPO = Path(__file__).resolve().parent.parent
CONTAINER = "djangohost-bench"
VIAS = ("docker", "root", "sudo")


def deploy(inventory: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inventory), "deploys/site.py"],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout + proc.stderr)
    return time.perf_counter() - start


def fresh_target(suite: str, via: str, tmp: Path) -> Path:
    """A new container of `suite` and an inventory of the demo's apps reaching it `via`."""
    key = tmp / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ssh = via != "docker"
    targets.start_container(CONTAINER, suite=suite, ports={22: 0} if ssh else {},
                            ssh_public_key=key.with_suffix(".pub").read_text().strip() if ssh else None)
    login = Login("root" if via == "root" else targets.SSH_USER, targets.published_port(CONTAINER, 22), key) \
        if ssh else None
    apps = [{"name": name, "domains": [f"{name}.test"], "source": str(REPO / "examples" / name)}
            for name in ("hello", "goodbye")]
    return write_inventory(tmp / "inventory.py", CONTAINER, apps, login)


def measure(suite: str, via: str, first_runs: int, noop_runs: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        first = []
        for _ in range(first_runs):
            inventory = fresh_target(suite, via, Path(tmp))
            first.append(deploy(inventory))
        noop = [deploy(inventory) for _ in range(noop_runs)]
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)
    return first, noop


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--first", type=int, default=3, help="first deploys (fresh containers)")
    parser.add_argument("--noop", type=int, default=5, help="no-op re-runs")
    parser.add_argument("--suite", default="bookworm", help="Debian release of the target")
    parser.add_argument("--via", choices=VIAS, default="docker", help="how pyinfra reaches the target")
    parser.add_argument("--matrix", action="store_true",
                        help="bookworm and trixie, each through docker and SSH with sudo")
    args = parser.parse_args()
    targets.ensure_docker()

    runs = [(suite, via) for suite in ("bookworm", "trixie") for via in ("docker", "sudo")] \
        if args.matrix else [(args.suite, args.via)]
    print(f"machine: {machine()}, {date.today()}")
    for suite, via in runs:
        first, noop = measure(suite, via, args.first, args.noop)
        label = f"{suite}, {'docker exec' if via == 'docker' else f'SSH as {via}'}"
        print(f"{label:<24} first deploy, two apps:  median {statistics.median(first):6.1f} s  "
              f"(runs: {', '.join(f'{t:.1f}' for t in first)})")
        print(f"{label:<24} no-op re-run, two apps:  median {statistics.median(noop):6.2f} s  "
              f"(runs: {', '.join(f'{t:.2f}' for t in noop)})")


if __name__ == "__main__":
    main()
