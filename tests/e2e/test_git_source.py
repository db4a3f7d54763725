"""An app deployed from a git repository over SSH with a deploy key: the repository is served by
an SSH server on the target itself, to a `git` user whose only key is the test's deploy key."""

from __future__ import annotations

from pathlib import Path

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


BUILD_HOME = "/var/lib/djangohost/build/shop"


def test_first_deploy_clones_as_the_build_user_with_its_key(site):
    container = site["container"]
    status, body = http_get(site["port"], "shop.test")
    assert status == 200 and "Hello from djangohost" in body
    assert sh(container, f"stat -c '%U %G %a' {BUILD_HOME} {BUILD_HOME}/deploy_key {BUILD_HOME}/repo") == \
        "_shop _shop 700\n_shop _shop 400\n_shop _shop 700"
    # Nobody but the build user reads the key, the app's user included, and it is the inventory's.
    for user in ("www-data", "shop"):
        assert "Permission denied" in sh(container, f"runuser -u {user} -- cat {BUILD_HOME}/deploy_key 2>&1",
                                         check=False)
    assert sh(container, f"cat {BUILD_HOME}/deploy_key") == site["key"].read_text().strip()
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
    assert sh(container, f"cat {BUILD_HOME}/deploy_key") == new_key.read_text().strip()
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


def key_in_use(site) -> Path:
    """The deploy key the git server knows: the rotated one, once the rotation test ran."""
    rotated = site["workdir"] / "new_deploy_key"
    return rotated if rotated.exists() else site["key"]


def test_a_committed_link_named_like_a_marker_writes_nowhere(site):
    """A hostile committer links the names of djangohost's markers to files of the host: the
    deploy writes its markers into the release, never through a link."""
    container = site["container"]
    protected = "sha256sum /etc/passwd /etc/hostname"
    before = sh(container, protected)
    sh(container, f"cd {GIT_WORK} && ln -s /etc/passwd .djangohost-commit && ln -s /etc/hostname .djangohost-venv "
                  "&& git add .djangohost-commit .djangohost-venv && git commit --quiet -m links && "
                  "git push --quiet origin HEAD:main && chown -R git: /srv/git")
    site["deploy"]("main", deploy_key=key_in_use(site))
    assert sh(container, protected) == before
    live = sh(container, "readlink -f /webapps/shop/current")
    assert sh(container, f"stat -c %F {live}/.djangohost-commit {live}/.djangohost-venv") == \
        "regular file\nregular file"
    assert sh(container, f"cat {live}/.djangohost-commit") == sh(container, f"cd {GIT_WORK} && git rev-parse HEAD")
    assert "Hello from git" in http_get(site["port"], "shop.test")[1]


def test_the_apps_user_cannot_choose_the_code_that_is_deployed(site):
    """The app's user points the mirror at a repository of its own: the next deploy must not
    fetch from it (the mirror is its build identity's, which the app cannot write)."""
    container, port = site["container"], site["port"]
    mirror = sh(container, f"ls -d /webapps/shop/repo {BUILD_HOME}/repo 2>/dev/null || true")
    sh(container, f"rm -rf /tmp/evil /tmp/evil.git && cp -r {GIT_WORK} /tmp/evil && chown -R shop: /tmp/evil")
    as_shop = "runuser -u shop -- env HOME=/tmp git -c user.name=a -c user.email=a@test"
    sh(container, f"cd /tmp/evil && sed -i 's/Hello from [a-z]*/Hello from the attacker/' hello/views.py && "
                  f"{as_shop} commit --quiet -am evil && {as_shop} clone --quiet --bare /tmp/evil /tmp/evil.git")
    redirected = sh(container, f"{as_shop} --git-dir={mirror} config url./tmp/evil.git.insteadOf "
                               "ssh://git@127.0.0.1/srv/git/shop.git 2>&1 || true")
    site["deploy"]("main", deploy_key=key_in_use(site))
    assert "Hello from the attacker" not in http_get(port, "shop.test")[1]
    assert "fatal" in redirected or "Permission denied" in redirected, redirected
    assert "insteadof" not in sh(container, f"git config --file {BUILD_HOME}/repo/config --list").lower()
    assert "Permission denied" in sh(container, f"runuser -u shop -- cat {BUILD_HOME}/deploy_key 2>&1 || true")


def test_the_build_identity_cannot_turn_roots_writes_on_a_file_of_its_choice(site):
    """The build identity (what a hostile commit's build runs as) relinks the mirror and the deploy
    key in its own home to files root owns: the next deploy must write and change neither."""
    container = site["container"]
    sh(container, "mkdir -p /srv/victim && echo keep > /srv/victim-file && chmod 600 /srv/victim-file")
    as_builder = "runuser -u _shop -- sh -c"
    sh(container, f"{as_builder} 'cd {BUILD_HOME} && mv repo repo.moved && ln -s /srv/victim repo && "
                  "rm -f deploy_key && ln -s /srv/victim-file deploy_key && "
                  "ln -s /srv/victim-file deploy_key.djangohost-new'")
    site["deploy"]("main", deploy_key=key_in_use(site), check=False)
    assert sh(container, "stat -c '%U %G %a' /srv/victim /srv/victim-file") == "root root 755\nroot root 600"
    assert sh(container, "cat /srv/victim-file") == "keep"
    # The next deploys put the identity's own files right, as the identity.
    site["deploy"]("main", deploy_key=key_in_use(site))
    assert sh(container, f"stat -c '%U %G %a %F' {BUILD_HOME}/repo {BUILD_HOME}/deploy_key") == \
        "_shop _shop 700 directory\n_shop _shop 400 regular file"
    assert "Hello" in http_get(site["port"], "shop.test")[1]
