"""Time the no-op run and a code deploy over 1, 2, 4 and 8 app servers behind a load balancer,
with the database on a server of its own.

    .venv/bin/python -m bench.app_servers [--servers 1,2,4,8] [--runs 3]

One Docker network holds the load balancer, the database server and the largest number of app
servers. Each step deploys hello on the first N app servers (a first deploy for the servers new
to it, not timed), then times no-op re-runs (median) and one code change shipped to all N. Beside
each no-op, pyinfra's own floor on the same hosts: `pyinfra INVENTORY exec -- true` (connect, one
command on each host; median). Beside the code deploy, the CPU time it took: inside the containers
(their cgroups), and on the machine's side (pyinfra and its `docker` commands).
Every container shares the machine's cores, so a deploy cannot take less than all of it divided
by their number.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.deploy_times import machine
from bench.status_time import pyinfra
from tests import targets
from tests.helpers import copy_example, write_groups

PREFIX = "djangohost-bench-servers"
NETWORK = PREFIX


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--servers", default="1,2,4,8")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    counts = [int(count) for count in args.servers.split(",")]
    targets.ensure_docker()
    names = {"lb": f"{PREFIX}-lb", "db": f"{PREFIX}-db",
             **{f"app{i}": f"{PREFIX}-app{i}" for i in range(1, max(counts) + 1)}}
    subprocess.run(["docker", "rm", "-f", *names.values()], capture_output=True)
    subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)
    targets.run("docker", "network", "create", NETWORK, stdout=subprocess.DEVNULL)
    for name in names.values():
        targets.start_container(name, network=NETWORK)
    figures = []
    try:
        usage = {name: cpu_usage_file(name) for name in names.values()}
        with tempfile.TemporaryDirectory() as tmp:
            source = copy_example("hello", Path(tmp))
            hello = {"name": "hello", "domains": ["hello.test"], "source": str(source), "workers": 2,
                     "media": False, "backup": False}
            for count in counts:
                inventory = write_groups(Path(tmp) / "inventory.py", {
                    "lb": [(names["lb"], {"private_address": targets.address(names["lb"])})],
                    "db": [(names["db"], {"private_address": targets.address(names["db"])})],
                    "app": [(names[f"app{i}"], {"private_address": targets.address(names[f"app{i}"]),
                                                "apps": [hello]}) for i in range(1, count + 1)],
                })
                pyinfra(inventory, "deploys/site.py")
                noop = [pyinfra(inventory, "deploys/site.py") for _ in range(args.runs)]
                floor = statistics.median(pyinfra(inventory, "exec", "--", "true") for _ in range(args.runs))
                views = source / "hello" / "views.py"
                message = f'MESSAGE = "Hello from {count} servers"'
                views.write_text(re.sub(r'MESSAGE = ".*"', message, views.read_text()))
                servers = [usage[names[f"app{i}"]] for i in range(1, count + 1)]
                others = [usage[names["lb"]], usage[names["db"]]]
                before = (cpu_seconds(servers), cpu_seconds(others), local_cpu_seconds())
                code = pyinfra(inventory, "deploys/site.py")
                after = (cpu_seconds(servers), cpu_seconds(others), local_cpu_seconds())
                cpu = tuple(end - start for start, end in zip(before, after, strict=True))
                figures.append((count, noop, floor, code, cpu))
    finally:
        subprocess.run(["docker", "rm", "-f", *names.values()], capture_output=True)
        subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)
    print(f"machine: {machine()}")
    one_noop, one_floor, one_code = statistics.median(figures[0][1]), figures[0][2], figures[0][3]
    cores = os.cpu_count() or 1
    for count, noop, floor, code, (servers_cpu, others_cpu, local_cpu) in figures:
        print(f"{count} app servers: no-op median {statistics.median(noop):5.2f} s "
              f"({statistics.median(noop) / one_noop:.2f}x) (runs: {', '.join(f'{t:.2f}' for t in noop)}); "
              f"pyinfra exec -- true {floor:5.2f} s ({floor / one_floor:.2f}x); "
              f"code deploy {code:5.2f} s ({code / one_code:.2f}x), its CPU time: app servers {servers_cpu:.1f} s "
              f"({servers_cpu / count:.1f} s each), load balancer and database server {others_cpu:.1f} s, "
              f"pyinfra and docker {local_cpu:.1f} s; "
              f"all of it on {cores} cores: at least {(servers_cpu + others_cpu + local_cpu) / cores:.1f} s")


def cpu_usage_file(container: str) -> Path:
    """Where the container's cgroup counts the CPU time of its processes: cpuacct.usage (v1,
    nanoseconds) or cpu.stat (v2, its usage_usec line)."""
    ident = targets.run("docker", "inspect", "-f", "{{.Id}}", container, capture_output=True).stdout.strip()
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{ident}/cpuacct.usage")
    return v1 if v1.exists() else next(Path("/sys/fs/cgroup").glob(f"**/*{ident}*/cpu.stat"))


def cpu_seconds(usage_files: list[Path]) -> float:
    """The CPU time the containers counted in `usage_files` have used."""
    total = 0.0
    for path in usage_files:
        if path.name == "cpuacct.usage":
            total += int(path.read_text()) / 1e9
        else:
            usage = next(line for line in path.read_text().splitlines() if line.startswith("usage_usec"))
            total += int(usage.split()[1]) / 1e6
    return total


def local_cpu_seconds() -> float:
    """The CPU time of this bench's finished children: pyinfra, and the docker commands it ran."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
