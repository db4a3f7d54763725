"""Off-host copies with restic: the inventory's settings, what a deploy writes from them, and the
tool (templates/offsite/djangohost-offsite.py) run for real against a local restic repository."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deploys.components import offsite
from deploys.engine.templates import render
from deploys.model.inventory import InventoryError
from deploys.model.programs import TEMPLATES, program
from tests.helpers import EXAMPLES, load_apps

tool = program("offsite/djangohost-offsite.py")
BASE = "sftp:keeper@vault.example:/srv/restic"


def app(name: str = "shop", **backup):
    return {"name": name, "domains": [f"{name}.test"], "source": str(EXAMPLES / "hello"), "backup": backup}


def test_the_hosts_repository_gives_each_app_a_path_and_keeps_its_own_password(tmp_path):
    key = tmp_path / "key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    shop, blog, quiet = load_apps("web1", {
        "djangohost_backup": {"offsite": {"repository": BASE, "sftp_key": str(key)}},
        "apps": [app(offsite={"password": "p" * 20}), app("blog", offsite={"password": "q" * 20, "check": "0 5 * * *"}),
                 app("quiet", offsite=False)]})
    assert shop.backup.offsite.repository == f"{BASE}/shop" and shop.backup.offsite.password == "p" * 20
    assert blog.backup.offsite.repository == f"{BASE}/blog" and blog.backup.offsite.check == "0 5 * * *"
    assert shop.backup.offsite.check.endswith(" 4 * * 0") and shop.backup.offsite.sftp_key == key
    assert quiet.backup.offsite is None
    settings = json.loads(offsite.settings_file(shop, shop.backup.offsite))
    assert settings["sftp"] == {"user": "keeper", "host": "vault.example", "port": None,
                                "key": "/etc/djangohost/offsite/shop.ssh_key",
                                "known_hosts": "/etc/djangohost/offsite/shop.known_hosts", "pinned": False}
    cron = render("backups/djangohost-backup.cron.j2", tool="/t", log="/l", offsite="/o", notify="/n",
                  apps=[shop, quiet])
    assert ("root /t take shop --kind scheduled >>/l 2>&1 && /o push shop >>/l 2>&1 || /n event shop backup_failed "
            "the scheduled backup or its push failed, see /l") in cron
    assert "take quiet --kind scheduled >>/l 2>&1 || /n event quiet backup_failed the scheduled backup failed" in cron


@pytest.mark.parametrize(("data", "message"), [
    ({"apps": [app(offsite={"repository": "sftp:keeper@vault:/srv;touch /tmp/x"})]},
     "host web1, app shop, field backup: offsite: repository: 'sftp:keeper@vault:/srv;touch /tmp/x' must be a "
     "restic repository"),
    ({"apps": [app(offsite={"repository": "--password-command=id"})]},
     "field backup: offsite: repository: '--password-command=id' must be a restic repository"),
    ({"apps": [app(offsite={"repository": "/srv/../etc"})]}, "repository: '/srv/../etc' must be"),
    ({"djangohost_backup": {"offsite": {"repository": "/srv/$(id)"}}, "apps": [app()]},
     "host web1, field djangohost_backup: offsite: repository: '/srv/$(id)' must be"),
    ({"djangohost_backup": {"offsite": {"repository": "/srv/r", "password": "x" * 20}}, "apps": [app()]},
     "host web1, app shop, field djangohost_backup: offsite: password: each app's repository has a password of "
     "its own"),
    ({"apps": [app(offsite={"repository": "/srv/r", "password": "short-secret"})]},
     "field backup: offsite: password: must be a string of 16 to 1000 characters on one line (the value is not "
     "shown)"),
    ({"apps": [app(offsite={"repository": "/srv/r", "s3_access_key_id": "AKIA1"})]},
     "offsite: s3_access_key_id: only an s3 repository reads it (this one is local)"),
    ({"apps": [app(offsite={"password": "x" * 20})]}, "field backup: offsite: repository: None must be"),
    ({"apps": [app(offsite={"repository": "/srv/r", "known_hosts": "vault ssh-ed25519 AAAA;rm"})]},
     "known_hosts: 'vault ssh-ed25519 AAAA;rm' must be a host key line"),
])
def test_bad_offsite_settings_are_refused_naming_host_app_and_field(data, message):
    with pytest.raises(InventoryError) as refused:
        load_apps("web1", data)
    assert message in str(refused.value)
    assert "short-secret" not in str(refused.value)


@pytest.fixture
def host(tmp_path, monkeypatch):
    """The tool's directories under tmp_path, an app `shop` with one good backup, a local repository."""
    backup_tool = tool.tool
    for module, attribute, path in ((backup_tool, "BACKUPS", "backups"), (backup_tool, "CONFIG", "backup"),
                                    (backup_tool, "LOCKS", "run"), (tool, "CONFIG", "offsite"),
                                    (tool, "STATUS", "status")):
        monkeypatch.setattr(module, attribute, tmp_path / path)
    for directory in ("backup", "offsite"):
        (tmp_path / directory).mkdir()
    (tmp_path / "backup/shop.json").write_text(json.dumps({
        "app": "shop", "home": str(tmp_path / "home"), "engine": None, "media": True, "keep_daily": 2,
        "keep_weekly": 1, "keep_migrations": 1}))
    (tmp_path / "offsite/shop.json").write_text(json.dumps({"app": "shop", "repository": str(tmp_path / "repo/shop"),
                                                            "sftp": None, "s3": None}))
    (tmp_path / "offsite/shop.password").write_text("shop-password-of-its-own")
    make_backup(tmp_path, "20261201T030000-scheduled", b"media" * 1000)
    return tmp_path


def make_backup(root: Path, name: str, media: bytes) -> None:
    directory = root / "backups/shop" / name
    directory.mkdir(parents=True)
    (directory / "media.tar.gz").write_bytes(media)
    files = {"media.tar.gz": {"size": len(media), "sha256": hashlib.sha256(media).hexdigest()}}
    (directory / "manifest.json").write_text(json.dumps({"app": "shop", "name": name, "files": files}))


def test_push_fetch_check_and_a_wrong_password(host, capsys):
    assert tool.main(["push", "shop"]) == 0
    assert "made the repository" in capsys.readouterr().out
    make_backup(host, "20261202T030000-manual", b"media" * 1000 + b"more")
    assert tool.main(["push", "shop"]) == 0
    assert "pushed 20261202T030000-manual" in capsys.readouterr().out
    assert tool.main(["list", "shop"]) == 0
    assert capsys.readouterr().out.split() == ["20261201T030000-scheduled", "20261202T030000-manual"]

    # Gone from the host: fetched back, whole, by name or the newest.
    shutil.rmtree(host / "backups/shop")
    assert tool.main(["fetch", "shop"]) == 0
    assert capsys.readouterr().out.strip() == "20261202T030000-manual"
    assert (host / "backups/shop/20261202T030000-manual/media.tar.gz").read_bytes().endswith(b"more")
    assert oct((host / "backups/shop/20261202T030000-manual").stat().st_mode & 0o777) == "0o700"
    assert tool.main(["fetch", "shop", "20261130T030000-manual"]) == 1
    assert "has no backup 20261130T030000-manual" in capsys.readouterr().err
    assert tool.main(["check", "shop"]) == 0

    # A third day: keep_daily 2 keeps the two newest days there too, and the oldest is pruned.
    make_backup(host, "20261203T030000-manual", b"third")
    assert tool.main(["push", "shop"]) == 0
    capsys.readouterr()
    assert tool.main(["list", "shop"]) == 0
    assert capsys.readouterr().out.split() == ["20261202T030000-manual", "20261203T030000-manual"]

    (host / "offsite/shop.password").write_text("not-the-password-at-all")
    assert tool.main(["push", "shop"]) == 1
    error = capsys.readouterr().err
    assert "app shop: push FAILED" in error and "does not open it" in error
    assert not (host / "repo/shop.new").exists()
    assert json.loads((host / "status/shop.json").read_text())["push"]["ok"] is False


def test_an_app_name_that_is_not_one_is_refused(capsys):
    assert tool.main(["push", "../../etc/passwd"]) == 2
    assert "is not an app's name" in capsys.readouterr().err


def test_the_tool_runs_restic_without_a_shell_and_with_the_apps_files_only(host):
    repository = tool.Repository("shop")
    options = repository.options()
    assert options[:4] == ["--repo", str(host / "repo/shop"), "--password-file", str(host / "offsite/shop.password")]
    assert "RESTIC_PASSWORD" not in repository.environment()
    done = subprocess.run(["python3", "-c", "import sys; print(sys.argv)", *options], capture_output=True, text=True)
    assert done.returncode == 0


def test_the_tool_reads_an_app_with_a_database(host, monkeypatch):
    """djangohost-offsite loads the backup tool, which hands itself to its engine's part by its
    module's name: the tool is registered under it."""
    monkeypatch.setattr(tool.tool, "ENGINES", host / "engines")
    (host / "engines").mkdir()
    (host / "engines/postgresql.py").write_text((TEMPLATES / "postgres/backup_postgresql.py").read_text())
    settings = json.loads((host / "backup/shop.json").read_text())
    (host / "backup/shop.json").write_text(json.dumps({**settings, "engine": "postgresql"}))
    assert tool.tool.App("shop").database.file == "db.dump"
