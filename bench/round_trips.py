"""Round trips of a no-op re-run over SSH as a sudo user, with latency added by a delaying TCP
proxy in front of the container's sshd (the kernel here has no netem).

    .venv/bin/python -m bench.round_trips [--delay 0.1] [--runs 3] [--apps 2]

Deploys N apps (copies of the hello example) on a fresh container over SSH, then times, with no
delay and with `--delay` seconds added to every round trip: pyinfra's own floor (`pyinfra
INVENTORY exec -- true`: connect, sudo, one command) and a no-op `deploys/site.py`. The round
trips of each are its added time divided by the delay (noisy on a busy machine), and the commands
each sends once connected are counted from pyinfra's debug log: a no-op sends one more than the
floor (the state read), since it takes no lock.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.deploy_times import machine
from tests import targets
from tests.helpers import REPO, Login, copy_example, write_inventory

CONTAINER = "djangohost-bench-round-trips"


class DelayProxy:
    """127.0.0.1:port forwarding to 127.0.0.1:target, each direction delayed by half of `delay`
    (bytes keep their order; the bandwidth is the loopback's)."""

    def __init__(self, target: int) -> None:
        self.target, self.delay, self.port = target, 0.0, 0
        self._ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True).start()
        self._ready.wait()

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await server.serve_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(send())
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + self.delay / 2, data))
        queue.put_nowait((time.monotonic() + self.delay / 2, b""))
        await sender


def timed(*command: str) -> float:
    start = time.perf_counter()
    run(*command)
    return time.perf_counter() - start


def commands(*command: str) -> int:
    """The commands the run sent to the host after connecting (pyinfra's debug log says each)."""
    return run("--debug", *command).count("Waiting for exit status")


def run(*command: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "pyinfra", "-y", *command], cwd=REPO, capture_output=True,
                          text=True)
    if proc.returncode:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds added to every round trip")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--apps", type=int, default=2)
    args = parser.parse_args()
    targets.ensure_docker()
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        targets.start_container(CONTAINER, ports={22: 0},
                                ssh_public_key=key.with_suffix(".pub").read_text().strip())
        try:
            proxy = DelayProxy(targets.published_port(CONTAINER, 22))
            source = copy_example("hello", Path(tmp))
            apps = [{"name": f"app{i}", "domains": [f"app{i}.test"], "source": str(source), "workers": 1}
                    for i in range(1, args.apps + 1)]
            inventory = str(write_inventory(Path(tmp) / "inventory.py", "127.0.0.1", apps,
                                            login=Login(targets.SSH_USER, proxy.port, key)))
            timed(inventory, "deploys/site.py")
            sent = commands(inventory, "exec", "--", "true"), commands(inventory, "deploys/site.py")
            figures = {}
            for delay in (0.0, args.delay):
                proxy.delay = delay
                figures[delay] = (statistics.median(timed(inventory, "exec", "--", "true") for _ in range(args.runs)),
                                  statistics.median(timed(inventory, "deploys/site.py") for _ in range(args.runs)))
        finally:
            subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)
    (floor0, noop0), (floor1, noop1) = figures[0.0], figures[args.delay]
    floor_trips, noop_trips = (floor1 - floor0) / args.delay, (noop1 - noop0) / args.delay
    print(f"machine: {machine()}")
    print(f"apps: {args.apps}, delay added: {args.delay * 1000:.0f} ms, median of {args.runs}")
    print(f"pyinfra exec -- true:  {floor0:5.2f} s -> {floor1:5.2f} s   {floor_trips:4.1f} round trips")
    print(f"no-op deploys/site.py: {noop0:5.2f} s -> {noop1:5.2f} s   {noop_trips:4.1f} round trips")
    print(f"no-op beyond the floor: {noop_trips - floor_trips:4.1f} round trips")
    print(f"commands sent after connecting: exec {sent[0]}, no-op {sent[1]}")


if __name__ == "__main__":
    main()
