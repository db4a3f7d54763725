"""djangohost and the Ansible playbook we measure ourselves against (../shared/anchors/ansible),
side by side in one session on the same kind of fresh Debian 12 container: first deploy and no-op
re-run of the two-app job, each tool's figures and djangohost's ratio to Ansible.

    .venv/bin/python -m bench.beside_ansible [--first 3] [--noop 5] [--anchor ../shared/anchors/ansible]

The first deploys of the two tools are taken in turn (Ansible's, then djangohost's, --first
times), and the ratio is of their medians: on a shared machine the same deploy spreads by a
tenth or more from run to run, and a drift of the machine weighs on both tools alike.

Ansible needs Python on the target: its container starts from the test image with python3 added
(djangohost installs what it needs itself, python3 included, within its first deploy).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
from datetime import date
from pathlib import Path

from bench.deploy_times import machine, measure, phase_lines
from tests import targets

REPO = Path(__file__).resolve().parent.parent
ANCHOR_IMAGE = "djangohost-anchor:bookworm"


def anchor_image() -> str:
    """The test image of Debian 12 with python3, for Ansible's modules (made once)."""
    if not targets.image_exists(ANCHOR_IMAGE):
        base = targets.ensure_image("bookworm")
        subprocess.run(["docker", "rm", "-f", "djangohost-anchor-build"], capture_output=True)
        subprocess.run(["docker", "run", "--name", "djangohost-anchor-build", base, "sh", "-c",
                        "apt-get update -q && apt-get install -y -q python3"], check=True, capture_output=True)
        subprocess.run(["docker", "commit", "djangohost-anchor-build", ANCHOR_IMAGE], check=True, capture_output=True)
        subprocess.run(["docker", "rm", "-f", "djangohost-anchor-build"], capture_output=True)
    return ANCHOR_IMAGE


def ansible(anchor: Path, runs: int) -> tuple[float, float]:
    """The anchor's own runner: its full run and the median of its no-op re-runs, in seconds."""
    proc = subprocess.run(["bash", str(anchor / "run.sh")], capture_output=True, text=True,
                          env={**os.environ, "IMAGE": anchor_image(), "RUNS": str(runs)})
    if proc.returncode:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    full = re.search(r"\(a\) full run, fresh container:\s+([0-9.]+) s", proc.stdout)
    noop = re.search(r"\(b\) no-op re-run \(changed=0\):\s+min [0-9.]+ s / median ([0-9.]+) s", proc.stdout)
    if not full or not noop:
        raise SystemExit(f"the anchor's output changed:\n{proc.stdout[-3000:]}")
    return float(full[1]), float(noop[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--first", type=int, default=3, help="first deploys of each tool, taken in turn")
    parser.add_argument("--noop", type=int, default=5, help="no-op re-runs of each tool")
    parser.add_argument("--anchor", type=Path, default=REPO.parent / "shared" / "anchors" / "ansible")
    args = parser.parse_args()
    targets.ensure_docker()
    print(f"machine: {machine()}, {date.today()}")
    ansible_first: list[float] = []
    first: list[float] = []
    phases: list[dict[str, float]] = []
    ansible_noop = 0.0
    for run in range(args.first):
        # Each tool's no-op re-runs are counted once (Ansible's runner makes at least one each time).
        full, noop_median = ansible(args.anchor, args.noop if run == 0 else 1)
        ansible_first.append(full)
        ansible_noop = ansible_noop or noop_median
        phases.append({})
        ours, noop = measure("bookworm", "docker", 1, args.noop if run == args.first - 1 else 0, phases[-1])
        first += ours
    ratio = statistics.median(first) / statistics.median(ansible_first)
    ours_noop = statistics.median(noop)
    print(f"{'':<14} {'Ansible':>9} {'djangohost':>11} {'ratio':>7}")
    print(f"{'first deploy':<14} {statistics.median(ansible_first):8.1f}s {statistics.median(first):10.1f}s "
          f"{ratio:6.2f}x   (in turn, Ansible: {', '.join(f'{t:.1f}' for t in ansible_first)}; "
          f"djangohost: {', '.join(f'{t:.1f}' for t in first)})")
    print(f"{'no-op re-run':<14} {ansible_noop:8.2f}s {ours_noop:10.2f}s {ours_noop / ansible_noop:6.2f}x"
          f"   (djangohost runs: {', '.join(f'{t:.2f}' for t in noop)})")
    mean = {phase: statistics.mean(run.get(phase, 0.0) for run in phases) for run in phases for phase in run}
    print("\n".join(["djangohost's first deploy by phase (mean):", *phase_lines(mean)]))


if __name__ == "__main__":
    main()
