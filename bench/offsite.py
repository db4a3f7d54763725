"""Time taking, pushing off the host and restoring the backups of an app with a large database and
media, and measure what a second backup adds to the repository (deduplication).

    .venv/bin/python -m bench.offsite [--database 200] [--media 200]

Debian 12 containers on a network of their own: the app host, with examples/store deployed and an
offsite repository over SFTP on another (tests.helpers.restic_server). A table beside the store's
products is filled until its database holds about DATABASE MiB, its media with MEDIA files of
1 MiB of random bytes. Then `deploys/backup.py` takes a backup and pushes it (restic's first push); a few
rows later, a second one (the bytes it adds are the deduplication's measure). The app host is then
destroyed, a fresh one deployed from the same inventory, and `deploys/restore.py --data
from=remote` restores the newest backup from the repository alone; the rows are counted.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.deploy_times import machine
from tests import targets
from tests.helpers import REPO, copy_example, restic_server, sh, write_inventory

# The rows: the store's products and a table of ballast beside them (its page lists every product:
# a page of millions would outlast the health gate).
ROWS = ("runuser -u store -- psql -Atc 'select (select count(*) from catalog_product) + "
        "(select count(*) from ballast)' store")
# Ballast rows of about 105 bytes on the disk.
ROWS_PER_MIB = 10000
PUSHED = re.compile(r"pushed (\S+) to \S+ \((\d+) bytes added, ([0-9.]+) s\)")


def pyinfra(inventory: Path, deploy: str, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inventory), deploy, *args],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout[-5000:] + proc.stderr[-5000:])
    return time.perf_counter() - start, proc.stdout + proc.stderr


def mib(count: float) -> str:
    return f"{count / 2**20:.1f} MiB"


def fill(container: str, database_mib: int, media_mib: int) -> tuple[int, int]:
    """The store's data: rows to about `database_mib`, `media_mib` files of 1 MiB; the database's
    size and the rows."""
    sh(container, "runuser -u store -- psql -qc \"create table ballast as select i, md5(i::text) || "
                  f"md5((i + 1)::text) as line from generate_series(1, {database_mib * ROWS_PER_MIB}) i\" store")
    sh(container, f"cd /webapps/store/media && for i in $(seq {media_mib}); do "
                  "head -c 1048576 /dev/urandom > file$i.bin; done && chown store:www-data file*.bin")
    size = int(sh(container, "runuser -u postgres -- psql -Atc \"select pg_database_size('store')\""))
    return size, int(sh(container, ROWS))


def push(inventory: Path) -> tuple[float, str, int, float]:
    """deploys/backup.py: its whole time, the backup's name, the bytes its push added, the push's time."""
    took, output = pyinfra(inventory, "deploys/backup.py", "--data", "app=store")
    found = PUSHED.search(output)
    if not found:
        sys.exit(f"no push reported:\n{output[-3000:]}")
    return took, found.group(1), int(found.group(2)), float(found.group(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--database", type=int, default=200, help="MiB of database (about)")
    parser.add_argument("--media", type=int, default=200, help="MiB of media, in files of 1 MiB")
    args = parser.parse_args()
    targets.ensure_docker()
    targets.ensure_image()
    network = f"djangohost-bench-offsite-{uuid.uuid4().hex[:6]}"
    targets.run("docker", "network", "create", network, stdout=subprocess.DEVNULL)
    names = [f"{network}-{label}" for label in ("vault", "web", "fresh")]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp), network, *names, args.database, args.media)
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


def run(tmp: Path, network: str, vault: str, web: str, fresh: str, database_mib: int, media_mib: int) -> None:
    targets.start_container(vault, network=network)
    key, known_host = restic_server(vault, tmp)
    apps = [{"name": "store", "domains": ["store.test"], "source": str(copy_example("store", tmp)),
             "backup": {"offsite": {"password": uuid.uuid4().hex}}}]
    settings = {"offsite": {"repository": f"sftp:keeper@{vault}:/srv/restic", "sftp_key": str(key),
                            "known_hosts": known_host}}
    targets.start_container(web, network=network)
    inventory = write_inventory(tmp / "inventory.py", web, apps, djangohost_backup=settings)
    pyinfra(inventory, "deploys/site.py")
    database, rows = fill(web, database_mib, media_mib)
    first = push(inventory)
    dump = int(sh(web, f"stat -c %s /var/backups/djangohost/store/{first[1]}/db.dump"))
    sh(web, "runuser -u store -- psql -qc \"insert into catalog_product (name) select 'new ' || i "
            "from generate_series(1, 100) i\" store")
    second = push(inventory)
    rows += 100
    repository = int(sh(vault, "du -sb /srv/restic/store | cut -f1"))

    subprocess.run(["docker", "rm", "-f", web], capture_output=True)
    targets.start_container(fresh, network=network)
    fresh_inventory = write_inventory(tmp / "inventory-fresh.py", fresh, apps, djangohost_backup=settings)
    deployed, _ = pyinfra(fresh_inventory, "deploys/site.py")
    restored, output = pyinfra(fresh_inventory, "deploys/restore.py", "--data", "app=store", "--data", "from=remote")
    stopped = re.search(r"processes were stopped for ([0-9.]+) s", output)
    back = int(sh(fresh, ROWS))
    if back != rows:
        sys.exit(f"the restore brought back {back} rows of {rows}")

    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}; targets: Debian 12 containers, docker exec; "
          "repository over SFTP on a third container")
    print(f"data: database {mib(database)} ({rows} rows, dump {mib(dump)}), media {media_mib} files, "
          f"{mib(media_mib * 2**20)}")
    print(f"first backup, taken and pushed (deploys/backup.py): {first[0]:.1f} s; the push alone {first[3]:.1f} s, "
          f"{mib(first[2])} added")
    print(f"second backup (100 rows more): {second[0]:.1f} s; the push alone {second[3]:.1f} s, "
          f"{mib(second[2])} added ({second[2]} bytes)")
    print(f"repository after both: {mib(repository)}")
    print(f"fresh host: deploy {deployed:.1f} s; restore from the repository (deploys/restore.py from=remote, "
          f"health gate included) {restored:.1f} s; processes stopped {stopped.group(1) if stopped else '?'} s; "
          f"{back} of {rows} rows back")


if __name__ == "__main__":
    main()
