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
import re
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


# The phases of a deploy, by the names of their operations (as pyinfra prints them); the time of
# an operation runs from its start to the next one's. Migrations, collectstatic, the static files'
# compression and the candidate check are one step on the host. The packages, the virtualenvs and
# those steps run in the background (see deploys.components.base, deploys.components.app): a phase is the time the run
# spends starting them and waiting for them.
PHASES = {
    "packages": r"Host base \| Install |Host services \| Packages ",
    "database": r"PostgreSQL \||MariaDB \|",
    "virtualenvs (uv's install included)": r": virtualenv |Host base \| uv ",
    "migrations, static files, check": r"collectstatic, candidate check|candidate check passed",
    "reload, health gates": r"Supervisor program \||Health gate \|",
}
PLANNING = "connect, facts, plan"
OTHER = "the rest"


def deploy(inventory: Path, phases: dict[str, float] | None = None) -> float:
    """The wall time of one run of deploys/site.py; with `phases`, each phase's time added to it."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pyinfra", "-y", str(inventory), "deploys/site.py"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output, started = [], [(start, PLANNING)]
    for line in proc.stdout:
        output.append(line)
        if "--> Starting operation: " in line:
            name = re.sub(r"\x1b\[[0-9;]*m", "", line.split("--> Starting operation: ", 1)[1]).strip()
            started.append((time.perf_counter(), next(
                (phase for phase, pattern in PHASES.items() if re.search(pattern, name)), OTHER)))
    end = time.perf_counter()
    if proc.wait():
        sys.exit("".join(output))
    if phases is not None:
        for (at, phase), (until, _) in zip(started, [*started[1:], (end, "")], strict=True):
            phases[phase] = phases.get(phase, 0.0) + until - at
    return end - start


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


def measure(suite: str, via: str, first_runs: int, noop_runs: int,
            phases: dict[str, float] | None = None) -> tuple[list[float], list[float]]:
    """First deploys on fresh containers, then no-op re-runs; `phases` gets the first deploys'
    phases, averaged."""
    totals: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        first = []
        for _ in range(first_runs):
            inventory = fresh_target(suite, via, Path(tmp))
            first.append(deploy(inventory, totals))
        noop = [deploy(inventory) for _ in range(noop_runs)]
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)
    if phases is not None:
        phases.update({phase: total / first_runs for phase, total in totals.items()})
    return first, noop


def phase_lines(phases: dict[str, float]) -> list[str]:
    """The phases of a first deploy, in the order they run, with their share of it."""
    whole = sum(phases.values())
    return [f"    {phase:<34} {phases[phase]:6.1f} s  {phases[phase] / whole:4.0%}"
            for phase in (PLANNING, *PHASES, OTHER) if phase in phases]


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
        phases: dict[str, float] = {}
        first, noop = measure(suite, via, args.first, args.noop, phases)
        label = f"{suite}, {'docker exec' if via == 'docker' else f'SSH as {via}'}"
        print(f"{label:<24} first deploy, two apps:  median {statistics.median(first):6.1f} s  "
              f"(runs: {', '.join(f'{t:.1f}' for t in first)})")
        print(f"{label:<24} no-op re-run, two apps:  median {statistics.median(noop):6.2f} s  "
              f"(runs: {', '.join(f'{t:.2f}' for t in noop)})")
        print("\n".join([f"{label:<24} phases of a first deploy (mean):", *phase_lines(phases)]))


if __name__ == "__main__":
    main()
