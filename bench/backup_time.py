"""Time a backup and a restore of one app whose database holds a stated number of rows.

    .venv/bin/python -m bench.backup_time [--rows 1000000] [--media 200] [--runs 3]

Deploys examples/store (PostgreSQL) on a fresh container, fills its product table with ROWS rows
(names of 40 characters) and its media with MEDIA files of 64 KiB of random bytes, then takes
backups with `deploys/backup.py` and restores the newest with `deploys/restore.py --data
media=yes`. It prints each command's time (pyinfra's whole run, and the tool run on the host through
docker exec), the sizes of the database, the dump and the media archive, and how long the app's
processes were stopped; then checks that the rows are all back.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.deploy_times import machine
from tests import targets
from tests.helpers import REPO, copy_example, sh, write_inventory

CONTAINER = "djangohost-bench-backup"
BACKUPS = "/var/backups/djangohost/store"
ROWS = "runuser -u store -- psql -Atc 'select count(*) from catalog_product' store"


def pyinfra(inventory: Path, deploy: str, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inventory), deploy, *args],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout + proc.stderr)
    return time.perf_counter() - start, proc.stdout + proc.stderr


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def size(path: str) -> int:
    return int(sh(CONTAINER, f"stat -c %s {path}"))


def mib(count: int) -> str:
    return f"{count / 2**20:7.1f} MiB"


def median(times: list[float]) -> str:
    return f"median {statistics.median(times):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--media", type=int, default=200, help="media files of 64 KiB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    targets.ensure_docker()
    targets.ensure_image()
    targets.start_container(CONTAINER)
    with tempfile.TemporaryDirectory() as tmp:
        apps = [{"name": "store", "domains": ["store.test"], "source": str(copy_example("store", Path(tmp)))}]
        inventory = write_inventory(Path(tmp) / "inventory.py", CONTAINER, apps)
        pyinfra(inventory, "deploys/site.py")
        sh(CONTAINER, "runuser -u store -- psql -qc \"insert into catalog_product (name) select "
                      f"md5(i::text) || lpad(i::text, 8, '0') from generate_series(1, {args.rows}) i\" store")
        sh(CONTAINER, f"cd /webapps/store/media && for i in $(seq {args.media}); do "
                      "head -c 65536 /dev/urandom > file$i.bin; done && chown store:www-data file*.bin")
        database = int(sh(CONTAINER, "runuser -u postgres -- psql -Atc \"select pg_database_size('store')\""))

        backups = [pyinfra(inventory, "deploys/backup.py", "--data", "app=store")[0] for _ in range(args.runs)]
        newest = sh(CONTAINER, f"ls {BACKUPS} | tail -n 1")
        on_host = [timed(lambda: sh(CONTAINER, "/usr/local/sbin/djangohost-backup take store"))
                   for _ in range(args.runs)]
        dump, media = size(f"{BACKUPS}/{newest}/db.dump"), size(f"{BACKUPS}/{newest}/media.tar.gz")

        expected = int(sh(CONTAINER, ROWS))  # the example's own rows too
        sh(CONTAINER, "runuser -u store -- psql -qc 'delete from catalog_product' store")
        restored, output = pyinfra(inventory, "deploys/restore.py", "--data", "app=store", "--data", "media=yes")
        stopped = re.search(r"processes were stopped for ([0-9.]+) s", output)
        rows = int(sh(CONTAINER, ROWS))
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)
    if rows != expected:
        sys.exit(f"the restore brought back {rows} rows of {expected}")

    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}; target: Debian 12 container through docker exec")
    print(f"data: {args.rows} rows, database {mib(database)}; media {args.media} files, {mib(args.media * 65536)}")
    print(f"backup (deploys/backup.py):          {median(backups)}")
    print(f"backup on the host (the tool alone): {median(on_host)}")
    print(f"sizes: dump {mib(dump)}, media archive {mib(media)}")
    print(f"restore with media (deploys/restore.py, health gate included): {restored:6.2f} s; "
          f"processes stopped {stopped.group(1) if stopped else '?'} s; {rows} of {expected} rows back")


if __name__ == "__main__":
    main()
