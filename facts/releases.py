"""An app's releases, for rollback."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TypedDict

from pyinfra.api import FactBase


class Releases(TypedDict):
    live: str | None  # release id
    live_venv: str | None  # virtualenv key
    releases: dict[str, str | None]  # release id -> virtualenv key it was checked with, oldest first
    rolled_back: tuple[str, str] | None  # the last rollback: from release, to release


class AppReleases(FactBase[Releases]):
    """
    The releases in an app's home, oldest first, with the virtualenv each was checked with,
    which release and virtualenv are live, and the last rollback (as recorded at `rollback`).

    .. code:: python

        {"live": "20261121T090000-1b2c3d4e5f60", "live_venv": "68a854a128a9",
         "releases": {"20261121T090000-1b2c3d4e5f60": "68a854a128a9",
                      "20261122T101500-3f2a9c1d2e4f": "68a854a128a9"},
         "rolled_back": ("20261122T101500-3f2a9c1d2e4f", "20261121T090000-1b2c3d4e5f60")}
    """

    def command(self, home: str, rollback: str = "") -> str:  # type: ignore[override]
        home = shlex.quote(home)
        return (
            f"cd {home}/releases 2>/dev/null && for r in $(ls -1 | grep -v '\\.' | sort); do "
            f"printf 'release\\t%s\\t%s\\n' \"$r\" \"$(cat \"$r/.djangohost-venv\" 2>/dev/null)\"; done; "
            f"printf 'live\\t%s\\t%s\\n' \"$(readlink {home}/current)\" \"$(readlink {home}/venv)\"; "
            f"printf 'rolled\\t%s\\n' \"$(cat {shlex.quote(rollback)} 2>/dev/null)\"; true"
        )

    def process(self, output: Iterable[str]) -> Releases:  # type: ignore[override]
        releases = self.default()
        for line in output:
            kind, first, second = (line.split("\t") + ["", ""])[:3]
            if kind == "release":
                releases["releases"][first] = second or None
            elif kind == "live":
                releases["live"] = first.rsplit("/", 1)[-1] or None
                releases["live_venv"] = second.rsplit("/", 1)[-1] or None
            elif kind == "rolled" and len(first.split()) == 2:
                source, target = first.split()
                releases["rolled_back"] = (source, target)
        return releases

    @staticmethod
    def default() -> Releases:
        return Releases(live=None, live_venv=None, releases={}, rolled_back=None)
