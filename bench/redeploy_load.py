"""Requests served and failed while hello is redeployed under continuous load, and p99 latency
during the switch against steady state.

    .venv/bin/python -m bench.redeploy_load [--steady 10]

One fresh container with hello deployed; a request loop through Nginx (tests/load.py, on the
container's port published on 127.0.0.1) runs during: a steady period, a code redeploy, a
requirements redeploy (a new virtualenv), and a rollback.
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
from tests.helpers import copy_example, write_inventory
from tests.load import Load

REPO = Path(__file__).resolve().parent.parent
CONTAINER = "djangohost-bench-load"


def pyinfra(inventory: Path, *args: str, deploy: str = "deploys/site.py") -> None:
    proc = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inventory), deploy, *args],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout + proc.stderr)


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else 0.0


def report(label: str, load: Load, window: tuple[float, float] | None = None) -> None:
    during = [s for start, s in load.latencies if window is None or window[0] <= start <= window[1]]
    print(f"{label:<28} served {load.served:6d}  failed {sum(load.failed.values()):3d}  "
          f"p50 {statistics.median(during) * 1000:6.1f} ms  p99 {p99(during):6.1f} ms  "
          f"max {max(during) * 1000:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steady", type=float, default=10, help="seconds of steady-state load")
    args = parser.parse_args()
    targets.ensure_docker()
    targets.start_container(CONTAINER, ports={80: 0})
    port = targets.published_port(CONTAINER, 80)
    with tempfile.TemporaryDirectory() as tmp:
        source = copy_example("hello", Path(tmp))
        inventory = write_inventory(Path(tmp) / "inventory.py", CONTAINER, [
            {"name": "hello", "domains": ["hello.test"], "source": str(source)}])
        pyinfra(inventory)
        views = source / "hello" / "views.py"

        with Load(port, "hello.test", max_seconds=args.steady + 5) as steady:
            time.sleep(args.steady)
        print(f"machine: {machine()}")
        report("steady state", steady)

        for label, change in [
            ("redeploy, code changed", lambda: views.write_text(views.read_text().replace(
                "Hello from djangohost", "Hello, second release"))),
            ("redeploy, requirements", lambda: (source / "requirements.txt").write_text(
                "Django>=5.2,<5.3\nsix==1.16.0\n")),
        ]:
            change()
            with Load(port, "hello.test") as load:
                start = time.monotonic()
                pyinfra(inventory)
                window = (start, time.monotonic())
            report(label, load, window)
        with Load(port, "hello.test") as load:
            start = time.monotonic()
            pyinfra(inventory, "--data", "app=hello", deploy="deploys/rollback.py")
            window = (start, time.monotonic())
        report("rollback", load, window)
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)


if __name__ == "__main__":
    main()
