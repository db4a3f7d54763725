"""What each run did to each app, as djangohost-history recorded it on the host."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

from pyinfra.api import FactBase


class History(FactBase[dict[str, list[dict[str, Any]]]]):
    """
    The history of each app, oldest entry first (the newest `last` of each; 0: all); {} when the
    host has no history tool yet.

    .. code:: python

        {"hello": [{"time": "2026-12-08T01:30:00Z", "command": "site", "result": "deployed",
                    "release": "20261208T013000-24fd9b8e52fb", "login": "root",
                    "operator": "alice@laptop", "fingerprint": "3f2a...", ...}]}
    """

    def command(self, apps: list[str], tool: str, last: int = 0) -> str:  # type: ignore[override]
        """apps: the apps' names; tool: the history program."""
        if not apps:
            return "true"
        limit = f" --last {int(last)}" if last else ""
        return (f"if [ -x {shlex.quote(tool)} ]; then {shlex.quote(tool)} show{limit} "
                f"{' '.join(shlex.quote(app) for app in apps)}; fi; true")

    def process(self, output: Iterable[str]) -> dict[str, list[dict[str, Any]]]:  # type: ignore[override]
        text = "".join(output).strip()
        if not text:
            return {}
        found = json.loads(text)
        return {app: [entry for entry in entries if isinstance(entry, dict)]
                for app, entries in found.items() if isinstance(entries, list)} if isinstance(found, dict) else {}

    @staticmethod
    def default() -> dict[str, list[dict[str, Any]]]:
        return {}
