"""Root's locks live in a directory of root's alone, made so or refused: run for real against a
directory of this machine (as root: the directory's owner is what is checked)."""

from __future__ import annotations

import os
import subprocess

import pytest

from deploys.engine.templates import render
from deploys.model.programs import backup_tool

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="the locks' directory must be root's: run as root")


def take(run_dir, token="t1", holder="alice@laptop pid 1", stale="") -> str:
    script = render("engine/take-lock.sh.j2", run_dir=str(run_dir), lock=f"{run_dir}/lock", token=token,
                    holder=holder, stale=stale)
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # a fact's command: the answer is its output
    return done.stdout.strip()


def test_the_lock_is_taken_in_a_directory_made_root_only(tmp_path):
    run_dir = tmp_path / "djangohost"
    assert take(run_dir) == ""
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"
    assert take(run_dir, token="t2", holder="bob@desk pid 2") == "alice@laptop pid 1"
    assert take(run_dir, token="t2", holder="bob@desk pid 2", stale="alice@laptop pid 1") == ""


def test_a_root_directory_of_another_mode_is_made_root_only(tmp_path):
    run_dir = tmp_path / "djangohost"
    run_dir.mkdir(mode=0o777)
    os.chmod(run_dir, 0o777)
    assert take(run_dir) == ""
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize("kind", ["link", "someone else's", "file"])
def test_a_directory_that_is_not_roots_is_refused(tmp_path, kind):
    run_dir = tmp_path / "djangohost"
    if kind == "link":
        (tmp_path / "elsewhere").mkdir()
        run_dir.symlink_to(tmp_path / "elsewhere")
    elif kind == "file":
        run_dir.write_text("")
    else:
        run_dir.mkdir(mode=0o700)
        os.chown(run_dir, 65534, 65534)
    answer = take(run_dir)
    assert answer.startswith(f"djangohost: {run_dir} is not a directory of root's"), answer
    assert not (tmp_path / "elsewhere" / "lock").exists()


def test_the_backups_lock_is_a_file_of_roots_directory_never_a_link(tmp_path, monkeypatch):
    monkeypatch.setattr(backup_tool, "LOCKS", tmp_path / "djangohost")
    victim = tmp_path / "victim"
    victim.write_text("kept\n")
    assert backup_tool.run_dir() == tmp_path / "djangohost"
    (tmp_path / "djangohost" / "backup-shop.lock").symlink_to(victim)
    app = backup_tool.App.__new__(backup_tool.App)
    app.name = "shop"
    with pytest.raises(OSError):  # O_NOFOLLOW
        app.lock()
    assert victim.read_text() == "kept\n"
    os.chown(tmp_path / "djangohost", 65534, 65534)
    with pytest.raises(backup_tool.Refused):
        backup_tool.run_dir()
