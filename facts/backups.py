"""An app's backups on the host, as djangohost-backup lists them."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any, TypedDict

from pyinfra.api import FactBase


def list_command(apps: list[str], tool: str) -> str:
    """Shell: the host's clock, then the good backups of each of `apps` (each manifest names its
    app), as the backup tool at `tool` lists them."""
    names = " ".join(shlex.quote(app) for app in apps)
    tool = shlex.quote(tool)
    return f"date +%s; [ ! -x {tool} ] || {tool} list {names} 2>/dev/null; true"


class BackupList(TypedDict):
    now: int  # the host's clock (seconds since the epoch), to judge the backups' age by
    backups: list[dict[str, Any]]  # the manifest of each good backup, oldest first


class Backups(FactBase[BackupList]):
    """
    The good (verified) backups of an app, oldest first, each its manifest, and the host's clock.

    .. code:: python

        {"now": 1795431000,
         "backups": [{"app": "shop", "name": "20261123T031700-scheduled", "kind": "scheduled",
                      "created": 1795403820, "database": "shop",
                      "files": {"db.dump": {"size": 48211, "sha256": "9f86d0..."},
                                "media.tar.gz": {"size": 1201, "sha256": "0a1b2c..."}}}]}
    """

    def command(self, app: str, tool: str) -> str:  # type: ignore[override]
        """tool: the host's djangohost-backup."""
        return list_command([app], tool)

    def process(self, output: Iterable[str]) -> BackupList:  # type: ignore[override]
        lines = list(output)
        listed = self.default()
        if lines and lines[0].isdigit():
            listed["now"] = int(lines.pop(0))
        listed["backups"] = [json.loads(line) for line in lines if line.startswith("{")]
        return listed

    @staticmethod
    def default() -> BackupList:
        return BackupList(now=0, backups=[])
