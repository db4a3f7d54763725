"""Backups that leave the server by themselves: pushed with restic to a second container over SFTP,
encrypted there, deduplicated, pruned and checked; and, when the server is destroyed, restored
onto a fresh one from that repository alone.

Two Debian 12 containers on a network of the module's own: the app host (plain container, through
@docker) and `vault`, which runs sshd and keeps the repositories as its user `backup`.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests import targets
from tests.e2e.test_backups import add_products, products, upload
from tests.helpers import copy_example, http_get, master_pid, pyinfra, restic_server, sh, write_inventory

pytestmark = pytest.mark.e2e

OFFSITE = "/etc/djangohost/offsite"
BACKUPS = "/var/backups/djangohost"


@pytest.fixture(scope="module")
def world(docker_ready, tmp_path_factory):
    """The network, the vault, the app host with store and hello deployed (the first run at -vvv,
    for the secrets test), and how to write an inventory for a host of it."""
    workdir = tmp_path_factory.mktemp("offsite")
    network = f"djangohost-test-{uuid.uuid4().hex[:8]}"
    targets.run("docker", "network", "create", network, stdout=subprocess.DEVNULL)
    started: list[str] = []

    def start(label: str, ports: dict[int, int] | None = None) -> str:
        name = targets.start_container(f"{network}-{label}", network=network, ports=ports)
        started.append(name)
        return name

    try:
        vault = start("vault")
        key, known_host = restic_server(vault, workdir)
        passwords = {"store": f"store-{uuid.uuid4().hex}", "hello": f"hello-{uuid.uuid4().hex}"}
        sources = {app: str(copy_example(app, workdir)) for app in ("store", "hello")}

        def inventory(container: str, name: str = "inventory.py", **store_offsite: object) -> Path:
            apps = [{"name": app, "domains": [f"{app}.test"], "source": sources[app],
                     "backup": {"offsite": {"password": passwords[app],
                                            **(store_offsite if app == "store" else {})}}}
                    for app in ("store", "hello")]
            return write_inventory(workdir / name, container, apps, djangohost_backup={"offsite": {
                "repository": f"sftp:keeper@{vault}:/srv/restic", "sftp_key": str(key),
                "known_hosts": known_host}})

        web = start("web", {80: 0})
        first = pyinfra(inventory(web), "-vvv", json_results=False)
        yield {"vault": vault, "web": web, "network": network, "start": start, "inventory": inventory,
               "passwords": passwords, "key": key, "first": first, "workdir": workdir}
    finally:
        subprocess.run(["docker", "rm", "-f", *started], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


def port(container: str) -> int:
    return targets.published_port(container, 80)


def take(world, app: str = "store", **store_offsite: object):
    """A backup now, pushed; the run."""
    return pyinfra(world["inventory"](world["web"], **store_offsite), "--data", f"app={app}",
                   deploy="deploys/backup.py", json_results=False)


def pushed(run) -> list[tuple[str, int]]:
    """(backup name, bytes added to the repository) of each push a run reports."""
    return [(name, int(added)) for name, added in re.findall(r"pushed (\S+) to \S+ \((\d+) bytes added", run.output)]


def test_credentials_are_root_only_never_shown_and_a_second_run_changes_nothing(world):
    web, secrets = world["web"], [*world["passwords"].values(), world["key"].read_text().splitlines()[1]]
    assert not [secret for secret in secrets if secret in world["first"].output]
    modes = sh(web, f"stat -c '%n %U %a' {OFFSITE} {OFFSITE}/*").split("\n")
    assert modes[0] == f"{OFFSITE} root 700"
    assert {line.split(" ", 1)[1] for line in modes[1:]} == {"root 600"}
    assert sh(web, f"cat {OFFSITE}/store.password") == world["passwords"]["store"]
    # The app's user (and the other app's) reads none of it, though it knows where it is.
    for user in ("store", "hello"):
        for file in ("store.password", "store.ssh_key", "store.json"):
            denied = sh(web, f"runuser -u {user} -- cat {OFFSITE}/{file} 2>&1 || true")
            assert "Permission denied" in denied, (user, file, denied)
    cron = sh(web, "cat /etc/cron.d/djangohost-backup /etc/cron.d/djangohost-offsite")
    assert re.search(r"take store --kind scheduled >>\S+ 2>&1 && /usr/local/sbin/djangohost-offsite push store", cron)
    assert re.search(r"^\d+ 4 \* \* 0 root /usr/local/sbin/djangohost-offsite check store", cron, re.M)
    dry = pyinfra(world["inventory"](web), "--dry", "--diff", json_results=False)
    assert not [secret for secret in secrets if secret in dry.output]
    assert pyinfra(world["inventory"](web)).changed() == []


def test_a_backup_is_pushed_encrypted_and_a_second_one_adds_few_bytes(world):
    web, vault = world["web"], world["vault"]
    add_products(web, "anvil", "rope")
    world["media_url"] = upload(port(web), "photo.txt", b"a picture of an anvil")
    # Media of 4 MB that does not change between the two backups.
    sh(web, "runuser -u store -- sh -c 'head -c 4000000 /dev/urandom >/webapps/store/media/big.bin'")
    first = pushed(take(world))
    assert len(first) == 1 and first[0][1] > 4_000_000, first
    name = first[0][0]
    assert sh(vault, "stat -c '%U %a' /srv/restic/store/config") == "keeper 600"
    assert sh(web, "/usr/local/sbin/djangohost-offsite list store").split() == [name]
    # Encrypted there: the manifest's checksums, plain text on the host, are nowhere in the repository.
    manifest = json.loads(sh(web, f"cat {BACKUPS}/store/{name}/manifest.json"))
    checksum = manifest["files"]["db.dump"]["sha256"]
    assert sh(vault, f"grep -rl {checksum} /srv/restic/store || true") == ""
    assert sh(web, f"grep -l {checksum} {BACKUPS}/store/{name}/manifest.json")

    second = pushed(take(world))
    assert len(second) == 1 and second[0][1] < 400_000, second  # the media's 4 MB are not sent again
    world["sha_big"] = sh(web, "sha256sum /webapps/store/media/big.bin | cut -c1-64")


def test_a_wrong_password_fails_clearly_and_the_app_keeps_serving(world):
    web = world["web"]
    served, pid = products(port(web)), master_pid(web, "store")
    wrong = world["inventory"](web, name="inventory-wrong.py", password=f"wrong-{uuid.uuid4().hex}")
    pyinfra(wrong, "--data", "app=store")
    run = pyinfra(wrong, "--data", "app=store", deploy="deploys/backup.py", check=False, json_results=False)
    assert run.returncode != 0
    assert re.search(r"app store: push FAILED at \S+: the password of its offsite repository "
                     r"sftp:keeper@\S+:/srv/restic/store does not open it", run.output), run.output
    assert products(port(web)) == served and master_pid(web, "store") == pid
    status = pyinfra(world["inventory"](web), deploy="deploys/status.py", json_results=False).output
    assert re.search(r"store .* backup \S+-manual \(\d+m ago\); offsite push FAILED \d+m ago \(WARNING: the password",
                     status), status
    pyinfra(world["inventory"](web), "--data", "app=store")
    assert sh(web, f"cat {OFFSITE}/store.password") == world["passwords"]["store"]


def test_another_apps_password_does_not_open_this_apps_repository(world):
    web = world["web"]
    take(world, app="hello")
    sftp = json.loads(sh(web, f"cat {OFFSITE}/store.json"))["sftp"]
    ssh = (f"ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile={sftp['known_hosts']} "
           f"-i {sftp['key']} {sftp['user']}@{sftp['host']} -s sftp")
    attempt = sh(web, f"restic --repo sftp:{sftp['user']}@{sftp['host']}:/srv/restic/store "
                      f"--password-file {OFFSITE}/hello.password -o sftp.command='{ssh}' snapshots 2>&1 || true")
    assert "wrong password or no key found" in attempt, attempt


def test_a_hostile_repository_is_refused_before_anything_runs(world):
    web = world["web"]
    for hostile in ("sftp:keeper@vault:/srv;touch /tmp/pwned", "--password-command=touch /tmp/pwned",
                    "/srv/restic/$(touch /tmp/pwned)"):
        run = pyinfra(world["inventory"](web, name="inventory-hostile.py", repository=hostile), check=False,
                      json_results=False)
        assert run.returncode != 0
        assert f"host @docker/{web}, app store, field backup: offsite: repository: {hostile!r} must be a restic " \
               "repository" in run.output, run.output
        assert "Starting operation" not in run.output and "Beginning operation" not in run.output
    assert sh(web, "ls /tmp/pwned 2>&1 || true").endswith("No such file or directory")


def test_a_failed_check_is_reported_like_a_failed_backup(world):
    web, vault = world["web"], world["vault"]
    check = "/usr/local/sbin/djangohost-offsite check hello"
    assert "restic check of" in sh(web, f"{check} 2>&1")
    # An index file of hello's damaged on the storage host.
    sh(vault, "f=$(find /srv/restic/hello/index -type f | head -n 1) && "
              "printf XXXXXXXX | dd of=$f bs=1 seek=40 conv=notrunc status=none")
    failed = subprocess.run(["docker", "exec", web, "sh", "-c", f"{check} >>/var/log/djangohost-backup.log 2>&1"])
    assert failed.returncode == 1
    log = sh(web, "tail -n 5 /var/log/djangohost-backup.log")
    assert re.search(r"djangohost-offsite: app hello: check FAILED at \S+: restic check on \S+ failed", log), log
    status = pyinfra(world["inventory"](web), deploy="deploys/status.py", json_results=False).output
    assert re.search(r"hello .*; offsite pushed \d+m ago, check FAILED \d+m ago \(WARNING: restic check",
                     status), status


def test_the_server_destroyed_a_fresh_one_restores_from_the_repository_alone(world):
    old = world["web"]
    subprocess.run(["docker", "rm", "-f", old], check=True, capture_output=True)
    fresh = world["start"]("fresh", {80: 0})
    inventory = world["inventory"](fresh, name="inventory-fresh.py")
    pyinfra(inventory, "--data", "app=store")
    assert "anvil" not in products(port(fresh))  # the example's own rows only
    run = pyinfra(inventory, "--data", "app=store", "--data", "from=remote", deploy="deploys/restore.py",
                  json_results=False)
    assert re.search(r"restored \S+-manual \(database and media\)", run.output), run.output
    assert {"anvil", "rope"} <= set(products(port(fresh)))
    assert http_get(port(fresh), "store.test", world["media_url"]) == (200, "a picture of an anvil")
    assert sh(fresh, "sha256sum /webapps/store/media/big.bin | cut -c1-64") == world["sha_big"]
    assert pyinfra(inventory, "--data", "app=store").changed() == []
