"""Backups that restore: taken on demand, on schedule and before every migration that changes the
schema; verified, root only, pruned; pulled to this machine and restored onto a new host.

The site is Debian 13 with systemd, reached over SSH as a sudo user (cron runs the schedule
there, and pulls go through the login user's private directory); the disaster host is a fresh
Debian 13 container without systemd, through @docker.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import shlex
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import targets
from tests.helpers import as_user, copy_example, http_get, master_pid, pyinfra, sh, wait_for, write_inventory

pytestmark = pytest.mark.e2e

BACKUPS = "/var/backups/djangohost"
# Kept small, so that a few fake backups show the retention whole.
RETENTION = {"keep_daily": 3, "keep_weekly": 2, "keep_migrations": 2}


@pytest.fixture(scope="module")
def site(container_factory, login, tmp_path_factory):
    container = container_factory(systemd=True, suite="trixie", ssh=True)
    workdir = tmp_path_factory.mktemp("backups")
    apps = [
        {"name": "store", "domains": ["store.test"], "source": str(copy_example("store", workdir))},
        # Backed up every minute: the schedule is seen running.
        {"name": "hello", "domains": ["hello.test"], "source": str(copy_example("hello", workdir)),
         "backup": {"cron": "* * * * *"}},
    ]
    via = login(container, targets.SSH_USER)

    def inventory(entries: list[dict] = apps, name: str = "inventory.py", **backup: object):
        return write_inventory(workdir / name, container, entries, via, djangohost_backup={**RETENTION, **backup})

    first = pyinfra(inventory())
    return {"container": container, "port": targets.published_port(container, 80), "apps": apps,
            "inventory": inventory, "workdir": workdir, "first": first}


def manage(container: str, app: str, code: str) -> str:
    return sh(container, f"/webapps/{app}/bin/manage shell -c {json.dumps(code)} 2>/dev/null | tail -n 1")


def add_products(container: str, *names: str) -> None:
    manage(container, "store",
           f"from catalog.models import Product; [Product.objects.create(name=n) for n in {list(names)!r}]")


def products(port: int) -> list[str]:
    status, body = http_get(port, "store.test")
    assert status == 200, body
    return re.findall(r"<li>([^<]*)</li>", body)


def upload(port: int, name: str, content: bytes) -> str:
    """POST a file to the store's upload view, through Nginx; the URL it is served at."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/upload/", body, {"Host": "store.test",
                                            "Content-Type": f"multipart/form-data; boundary={boundary}"})
    response = conn.getresponse()
    answer = response.read()
    assert response.status == 200, answer
    return json.loads(answer)["url"]


def backups(container: str, app: str) -> list[str]:
    return sh(container, f"ls -1 {BACKUPS}/{app} 2>/dev/null || true").split()


def take(site, app: str = "store") -> str:
    """An on-demand backup of `app`, as a user takes it; its name."""
    before = set(backups(site["container"], app))
    pyinfra(site["inventory"](), "--data", f"app={app}", deploy="deploys/backup.py")
    new = sorted(set(backups(site["container"], app)) - before)
    assert len(new) == 1 and new[0].endswith("-manual"), new
    return new[0]


def test_backup_is_verified_and_readable_by_root_only(site):
    container = site["container"]
    status = pyinfra(site["inventory"](), deploy="deploys/status.py", json_results=False).output
    assert re.search(r"store .* backup NONE \(WARNING: no good backup yet\)", status), status

    name = take(site)
    directory = f"{BACKUPS}/store/{name}"
    assert sh(container, f"stat -c '%U %G %a' {BACKUPS} {BACKUPS}/store {directory}").split("\n") == \
        ["root root 700"] * 3
    files = sh(container, f"cd {directory} && stat -c '%n %U %a' *").split("\n")
    assert files == ["db.dump root 600", "manifest.json root 600", "media.tar.gz root 600"]
    manifest = json.loads(sh(container, f"cat {directory}/manifest.json"))
    assert manifest["app"] == "store" and manifest["database"] == "store"
    for file, recorded in manifest["files"].items():
        assert sh(container, f"sha256sum {directory}/{file} | cut -c1-64") == recorded["sha256"]
        assert int(sh(container, f"stat -c %s {directory}/{file}")) == recorded["size"]
    assert "TABLE public catalog_product" in sh(container, f"pg_restore --list {directory}/db.dump")
    # Neither the app nor another app's user reads a dump.
    for user in ("store", "hello", targets.SSH_USER):
        denied = sh(container, f"runuser -u {user} -- head -c1 {directory}/db.dump 2>&1 || true")
        assert "Permission denied" in denied, (user, denied)

    status = pyinfra(site["inventory"](), deploy="deploys/status.py", json_results=False).output
    assert re.search(rf"store .* backup {name} \(\d+m ago\)", status), status


def test_restore_brings_back_dropped_rows_and_deleted_media(site):
    container, port = site["container"], site["port"]
    add_products(container, "anvil", "rope")
    url = upload(port, "photo.txt", b"a picture of an anvil")
    assert http_get(port, "store.test", url) == (200, "a picture of an anvil")
    name = take(site)

    sh(container, "runuser -u store -- psql -qc 'DROP TABLE catalog_product' store")
    sh(container, f"rm /webapps/store/media/{url.rsplit('/', 1)[1]}")
    assert http_get(port, "store.test")[0] == 500 and http_get(port, "store.test", url)[0] == 404
    hello_pid = master_pid(container, "hello")

    run = pyinfra(site["inventory"](), "--data", "app=store", "--data", f"backup={name}", "--data", "media=yes",
                  deploy="deploys/restore.py", json_results=False)
    assert re.search(rf"restored {name} \(database and media\); its processes were stopped for [0-9.]+ s", run.output)
    assert {"anvil", "rope"} <= set(products(port))
    assert http_get(port, "store.test", url) == (200, "a picture of an anvil")
    assert master_pid(container, "hello") == hello_pid  # the other app was left alone
    assert sh(container, "stat -c '%U %G %a' /webapps/store/media") == "store www-data 750"
    # What the restore replaced stays until the next good backup, then goes.
    databases = "runuser -u postgres -- psql -Atc 'select datname from pg_database'"
    assert any(db.startswith("store-before-restore-") for db in sh(container, databases).split())
    take(site)
    assert not any(db.startswith("store-before-restore-") for db in sh(container, databases).split())
    assert "media-before-restore" not in sh(container, "ls /webapps/store")
    # The restored database is the app's as the deploy makes it: the next deploy changes nothing.
    assert pyinfra(site["inventory"]()).changed() == []


def test_a_destructive_migration_is_preceded_by_a_dump_that_brings_the_data_back(site):
    container, port = site["container"], site["port"]
    add_products(container, "compass")
    source = Path(site["apps"][0]["source"])
    (source / "catalog" / "templates" / "catalog" / "index.html").write_text(
        (source / "catalog" / "templates" / "catalog" / "index.html").read_text().replace("The store", "Our store"))
    pyinfra(site["inventory"]())  # new code, nothing to migrate: no dump
    assert not [name for name in backups(container, "store") if "-before-" in name]

    (source / "catalog" / "migrations" / "0002_clear.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    dependencies = [('catalog', '0001_initial')]\n"
        "    operations = [migrations.RunSQL('DELETE FROM catalog_product', migrations.RunSQL.noop)]\n")
    pyinfra(site["inventory"]())
    assert products(port) == []
    release = sh(container, "basename $(readlink /webapps/store/current)")
    dumps = [name for name in backups(container, "store") if "-before-" in name]
    assert [name.split("-before-", 1)[1] for name in dumps] == [release]

    rollback = pyinfra(site["inventory"](), "--data", "app=store", deploy="deploys/rollback.py", json_results=False)
    assert f"the dump taken before it is {dumps[0]}" in rollback.output
    pyinfra(site["inventory"](), "--data", "app=store", "--data", f"backup={dumps[0]}", deploy="deploys/restore.py")
    assert {"anvil", "rope", "compass"} <= set(products(port))


def test_retention_prunes_the_oldest_and_keeps_the_newest(site):
    container = site["container"]
    sample = take(site)
    now = datetime.now(UTC)
    # One backup a day for 40 days, an hour older than now, and four dumps before migrations.
    fakes = {f"{now - timedelta(days=day, hours=1):%Y%m%dT%H%M%S}-scheduled": day for day in range(1, 41)}
    migrations = [f"{now - timedelta(days=day):%Y%m%dT%H%M%S}-before-2026{day:02d}" for day in (3, 5, 7, 9)]
    sh(container, f"cd {BACKUPS}/store && mv {sample} /root/sample && rm -rf * && " +
       " && ".join(f"cp -a /root/sample {name}" for name in [*fakes, *migrations]) + " && rm -rf /root/sample")

    newest = take(site)
    left = set(backups(container, "store"))
    this_week = now.isocalendar()[:2]
    last_week = min(day for day in fakes.values()
                    if (now - timedelta(days=day, hours=1)).isocalendar()[:2] != this_week)
    # keep_daily 3: today (the newest) and the two days before; keep_weekly 2: this week's newest
    # and last week's; keep_migrations 2.
    wanted = {newest, *(name for name, day in fakes.items() if day in (1, 2, last_week)), *migrations[:2]}
    assert left == wanted


def test_scheduled_backups_run_from_cron(site):
    container = site["container"]
    assert sh(container, "systemctl is-active cron") == "active"
    scheduled = wait_for(lambda: [name for name in backups(container, "hello") if name.endswith("-scheduled")],
                         timeout=150, interval=5)
    assert "media.tar.gz" in sh(container, f"ls {BACKUPS}/hello/{scheduled[0]}")
    status = pyinfra(site["inventory"](), "--data", "app=hello", deploy="deploys/status.py", json_results=False)
    assert re.search(r"hello .* backup \S+-scheduled \(\d+m ago\)", status.output), status.output


def test_a_corrupt_backup_is_refused_and_the_live_database_is_untouched(site):
    container, port = site["container"], site["port"]
    add_products(container, "lantern")
    # Rows enough that most of the dump is table data, which pg_restore --list does not read.
    ballast = "runuser -u store -- psql -qc '{}' store"
    sh(container, ballast.format("create table ballast as select md5(i::text) from generate_series(1, 20000) i"))
    name = take(site)
    add_products(container, "kettle")  # written after the backup: a restore would lose it
    served, pid = products(port), master_pid(container, "store")
    dump = f"{BACKUPS}/store/{name}/db.dump"
    restore = ["--data", "app=store", "--data", f"backup={name}"]
    databases = "runuser -u postgres -- psql -Atc 'select datname from pg_database'"

    # One byte changed on the disk: its checksum no longer matches.
    sh(container, f"printf X | dd of={dump} bs=1 seek=100 conv=notrunc status=none")
    run = pyinfra(site["inventory"](), *restore, deploy="deploys/restore.py", check=False, json_results=False)
    assert run.returncode != 0, run.output
    assert f"app store: backup {name}: db.dump does not match its checksum" in run.output

    # Cut short, with a manifest made to match it: the dump itself cannot be restored.
    sh(container, f"truncate -s $(( $(stat -c %s {dump}) * 2 / 3 )) {dump} && "
                  f"sum=$(sha256sum {dump} | cut -c1-64) && sed -i "
                  f"'/\"db.dump\"/,/sha256/ s/\"sha256\": \"[0-9a-f]*\"/\"sha256\": \"'$sum'\"/' "
                  f"{BACKUPS}/store/{name}/manifest.json")
    run = pyinfra(site["inventory"](), *restore, deploy="deploys/restore.py", check=False, json_results=False)
    assert run.returncode != 0, run.output
    assert (f"app store: backup {name}: its dump cannot be restored (the error is above); "
            "the app's database is as it was") in run.output
    assert products(port) == served and master_pid(container, "store") == pid
    assert "store-restore" not in sh(container, databases).split()
    sh(container, f"rm -rf {BACKUPS}/store/{name} && " + ballast.format("drop table ballast"))


def test_restoring_another_apps_backup_is_refused(site, tmp_path):
    container = site["container"]
    pyinfra(site["inventory"](), "--data", "app=store", "--data", f"pull={tmp_path}", deploy="deploys/backup.py")
    pulled = sorted((tmp_path / site["container"] / "store").iterdir())[-1]
    manifest = json.loads((pulled / "manifest.json").read_text())
    for file, recorded in manifest["files"].items():  # unencrypted: as taken on the host
        assert hashlib.sha256((pulled / file).read_bytes()).hexdigest() == recorded["sha256"]
    run = pyinfra(site["inventory"](), "--data", "app=hello", "--data", f"backup={pulled}",
                  deploy="deploys/restore.py", check=False)
    assert run.returncode != 0
    assert f"host {container}, app hello, field backup: {pulled} is a backup of app store, not of hello" in run.output
    assert run.changed() == []

    # A backup of store's relabelled as hello's, on the host: its dump still names store's database.
    hello_rows = "runuser -u hello -- psql -Atc 'select count(*) from django_migrations' hello"
    rows = sh(container, hello_rows)
    name = pulled.name
    sh(container, f"cp -a {BACKUPS}/store/{name} {BACKUPS}/hello/{name} && "
                  f"sed -i 's/\"app\": \"store\"/\"app\": \"hello\"/' {BACKUPS}/hello/{name}/manifest.json")
    run = pyinfra(site["inventory"](), "--data", "app=hello", "--data", f"backup={name}",
                  deploy="deploys/restore.py", check=False)
    assert run.returncode != 0 and f"backup {name}: its dump is not of database hello" in run.output
    assert sh(container, hello_rows) == rows
    sh(container, f"rm -rf {BACKUPS}/hello/{name}")


def test_an_encrypted_pulled_backup_restores_onto_a_new_host(site, container_factory, tmp_path):
    key = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = re.search(r"public key: (age1\w+)", key.read_text()).group(1)
    encrypted = site["inventory"](name="inventory-age.py", age_recipient=recipient)
    assert "Host base | Install age" in pyinfra(encrypted).changed()  # to encrypt with
    pulled_root = tmp_path / "pulled"
    pyinfra(encrypted, "--data", "app=store", "--data", f"pull={pulled_root}", deploy="deploys/backup.py")
    pulled = pulled_root / site["container"] / "store"
    on_host = backups(site["container"], "store")
    assert sorted(path.name for path in pulled.iterdir()) == on_host  # the host's retention, here too
    newest = pulled / on_host[-1]
    assert sorted(path.name for path in newest.iterdir()) == ["db.dump.age", "manifest.json", "media.tar.gz.age"]
    assert (newest / "db.dump.age").read_bytes().startswith(b"age-encryption.org/v1")
    assert newest.stat().st_mode & 0o777 == 0o700
    assert {path.stat().st_mode & 0o777 for path in newest.iterdir()} == {0o600}
    assert sh(site["container"], "ls -A /var/lib/djangohost/uploads") == ""  # nothing left on the way

    # The server is gone: a new one gets the inventory, a deploy, then the restore. (Debian 13
    # again: Debian 12's PostgreSQL 15 cannot read PostgreSQL 17's dumps, and says so.)
    replacement = container_factory(suite="trixie")
    inventory = write_inventory(tmp_path / "inventory.py", replacement, site["apps"][:1])
    pyinfra(inventory)
    port = targets.published_port(replacement, 80)
    assert products(port) == []
    restore = ["--data", "app=store", "--data", f"backup={newest}", "--data", "media=yes"]
    refused = pyinfra(inventory, *restore, deploy="deploys/restore.py", check=False)
    assert f"host @docker/{replacement}, app store, field backup: {newest} is encrypted; give the age identity" \
        in refused.output
    pyinfra(inventory, *restore, "--data", f"identity={key}", deploy="deploys/restore.py")
    assert {"anvil", "rope", "compass"} <= set(products(port))
    manifest = json.loads((newest / "manifest.json").read_text())
    for file, recorded in manifest["files"].items():  # decrypted, shipped and restored as taken
        assert sh(replacement, f"sha256sum {BACKUPS}/store/{newest.name}/{file} | cut -c1-64") == recorded["sha256"]
    media = sh(replacement, "ls /webapps/store/media")
    assert http_get(port, "store.test", f"/media/{media.split()[0]}") == (200, "a picture of an anvil")
    # Shipped once, it is the host's: restoring it again opens nothing here, so needs no identity.
    again = pyinfra(inventory, *restore, deploy="deploys/restore.py")
    assert "store: backup " + newest.name + " shipped" not in again.changed()


# As the owner of its database, the app sets the search path of everyone who connects to it and
# puts a view named like PostgreSQL's catalog first on it, whose function runs as whoever reads it.
HIJACK = ("ALTER DATABASE store SET search_path = public, pg_catalog; "
          "CREATE FUNCTION public.djangohost_pwn() RETURNS name LANGUAGE plpgsql AS "
          "$$ BEGIN EXECUTE 'ALTER ROLE store SUPERUSER'; RETURN 'public'; END $$; "
          "CREATE VIEW public.pg_tables AS SELECT public.djangohost_pwn() AS schemaname;")
SUPERUSER = "runuser -u postgres -- psql -XAtq -d postgres -c \"select rolsuper from pg_roles where rolname = 'store'\""


def test_roots_backup_runs_no_sql_of_the_apps_as_postgresqls_superuser(site):
    container = site["container"]
    as_user(container, "store", f"psql -X -q -d store -c {shlex.quote(HIJACK)}")
    try:
        # The backup a deploy takes before it migrates asks whether the database has tables.
        taken = sh(container, "/usr/local/sbin/djangohost-backup take store --before hijack 2>&1", check=False)
        assert sh(container, SUPERUSER) == "f", taken
    finally:
        sh(container, "runuser -u postgres -- psql -XAtq -d postgres -c 'ALTER ROLE store NOSUPERUSER' "
                      "-c 'ALTER DATABASE store RESET search_path' && "
                      "runuser -u postgres -- psql -XAtq -d store -c 'DROP VIEW public.pg_tables' "
                      "-c 'DROP FUNCTION public.djangohost_pwn()'")
    assert products(site["port"])  # the app still serves


def test_a_file_the_app_cannot_read_stays_out_of_its_media_backup(site):
    # What a hard link to a file of root's in the app's media would be (this kernel's
    # protected_hardlinks stops the app making one; a host without it would not): root's tar read it
    # into the backup, which restores as the app's.
    container = site["container"]
    secret = "/webapps/store/media/root-only.txt"
    sh(container, f"echo root-secret > {secret} && chmod 600 {secret}")
    try:
        name = sh(container, "/usr/local/sbin/djangohost-backup take store").splitlines()[-1]
        archived = sh(container, f"tar -tzf {BACKUPS}/store/{name}/media.tar.gz")
    finally:
        sh(container, f"rm -f {secret}")
    assert "media/" in archived and "root-only.txt" not in archived, archived
