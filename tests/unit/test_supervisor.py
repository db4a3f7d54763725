"""The shell that applies an app's Supervisor programs, run against a stand-in supervisorctl."""

from __future__ import annotations

import os
import subprocess

from deploys.components.supervisor import update

FAKE = """#!/bin/sh
if [ "$1" = avail ]; then
    printf 'shop-worker                      in use    auto      999:999\\nhello    in use    auto      999:999\\n'
else
    echo "$*" >> "$CALLS"
fi
"""


def run(tmp_path, command: str) -> list[str]:
    (tmp_path / "supervisorctl").write_text(FAKE)
    (tmp_path / "supervisorctl").chmod(0o755)
    calls = tmp_path / "calls"
    subprocess.run(["sh", "-c", command], check=True,
                   env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "CALLS": str(calls)})
    return calls.read_text().splitlines() if calls.exists() else []


def test_update_names_the_apps_programs_and_those_supervisor_still_has(tmp_path):
    # shop-worker left the inventory: it is named, so that update stops and removes it.
    assert run(tmp_path, update("shop", ["shop-redis"])) == ["update shop-redis shop-worker"]


def test_update_never_applies_every_apps_programs(tmp_path):
    # Nothing to name: no bare `supervisorctl update`, which would touch the other apps.
    assert run(tmp_path, update("goodbye", [])) == []
