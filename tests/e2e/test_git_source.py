"""An app deployed from a git repository over SSH with a deploy key: the repository is served by
an SSH server on the target itself, to a `git` user whose only key is the test's deploy key."""

from __future__ import annotations

import pytest

from tests import targets
from tests.helpers import GIT_WORK, commit, git_app, git_server, http_get, master_pid, pyinfra, sh, write_inventory

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def site(container_factory, tmp_path_factory):
    container = container_factory()
    workdir = tmp_path_factory.mktemp("git")
    key = git_server(container, workdir)

    def deploy(ref: str, *args: str, deploy_key=key, **kwargs):
        entry = {**git_app(ref, deploy_key), "name": "shop", "domains": ["shop.test"]}
        inventory = write_inventory(workdir / "inventory.py", container, [entry])
        return pyinfra(inventory, *args, **kwargs)

    first = deploy("main")
    return {"container": container, "port": targets.published_port(container, 80), "deploy": deploy,
            "first": first, "key": key, "workdir": workdir}


def test_first_deploy_clones_as_the_app_user_with_its_key(site):
    container = site["container"]
    status, body = http_get(site["port"], "shop.test")
    assert status == 200 and "Hello from djangohost" in body
    assert sh(container, "stat -c '%U %G %a' /webapps/shop/conf/deploy_key") == "shop shop 400"
    assert sh(container, "stat -c '%U %a' /webapps/shop/repo") == "shop 700"
    # Nobody but the app's user reads the key, and it is the key from the inventory.
    assert "Permission denied" in sh(container, "runuser -u www-data -- cat /webapps/shop/conf/deploy_key 2>&1",
                                     check=False)
    assert sh(container, "cat /webapps/shop/conf/deploy_key") == site["key"].read_text().strip()
    live = sh(container, "readlink -f /webapps/shop/current")
    assert sh(container, f"cat {live}/.djangohost-commit") == sh(container, f"cd {GIT_WORK} && git rev-parse HEAD")
    assert "BEGIN OPENSSH PRIVATE KEY" not in site["first"].output


def test_unchanged_ref_changes_nothing(site):
    assert site["deploy"]("main").changed() == []


def test_new_commit_on_the_ref_deploys_and_a_tag_or_sha_rolls_it_back(site):
    container, port = site["container"], site["port"]
    first = sh(container, f"cd {GIT_WORK} && git rev-parse HEAD")
    releases = sh(container, "ls /webapps/shop/releases")
    pid = master_pid(container, "shop")

    preview = site["deploy"]("main", "--dry")
    second = commit(container, "Hello from djangohost", "Hello from git", "v2")
    assert "shop: release of main" not in " ".join(preview.planned())  # nothing new when previewed
    preview = site["deploy"]("main", "--dry")
    assert f"shop: release of main at {second[:12]}" in " ".join(preview.planned())

    site["deploy"]("main")
    assert "Hello from git" in http_get(port, "shop.test")[1]
    assert master_pid(container, "shop") == pid  # a graceful reload, same requirements: same venv
    assert len(sh(container, "ls /webapps/shop/venvs").split()) == 1

    # Back to the first commit by its sha: the release it had is linked again, nothing rebuilt.
    run = site["deploy"](first)
    assert "Hello from djangohost" in http_get(port, "shop.test")[1]
    assert not any("release of" in name or "virtualenv" in name for name in run.changed())
    assert len(sh(container, "ls /webapps/shop/releases").split()) == len(releases.split()) + 1
    assert site["deploy"](first).changed() == []


def test_unknown_ref_is_a_clear_error_before_anything_runs(site):
    container = site["container"]
    live = sh(container, "readlink /webapps/shop/current")
    run = site["deploy"]("no-such-branch", check=False)
    assert run.returncode != 0
    assert ("host @docker/" in run.output and "app shop, field source:" in run.output
            and "ref no-such-branch not found" in run.output)
    assert sh(container, "readlink /webapps/shop/current") == live


def test_rotated_deploy_key_is_installed_before_the_fetch_needs_it(site):
    container = site["container"]
    new_key = site["workdir"] / "new_deploy_key"
    sh(container, "ssh-keygen -q -t ed25519 -N '' -f /root/new_key && "
                  "cp /root/new_key.pub ~git/.ssh/authorized_keys")  # the old key no longer opens it
    new_key.write_text(sh(container, "cat /root/new_key; rm /root/new_key /root/new_key.pub") + "\n")
    pid = master_pid(container, "shop")

    site["deploy"]("main", deploy_key=new_key)
    assert sh(container, "cat /webapps/shop/conf/deploy_key") == new_key.read_text().strip()
    assert "Hello from git" in http_get(site["port"], "shop.test")[1]
    assert master_pid(container, "shop") == pid
    assert site["deploy"]("main", deploy_key=new_key).changed() == []

    # Back to a key the server no longer knows: it is installed (nothing needed fetching); the
    # next run cannot fetch, and only this app's deploy fails, its live release serving on.
    site["deploy"]("main", deploy_key=site["key"])
    live = sh(container, "readlink /webapps/shop/current")
    run = site["deploy"]("main", deploy_key=site["key"], check=False)
    assert run.returncode != 0 and "shop" in run.output
    assert sh(container, "readlink /webapps/shop/current") == live
    assert "Hello from git" in http_get(site["port"], "shop.test")[1]
