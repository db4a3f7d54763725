"""The last run of each scheduled job of an app, as bin/job records it."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TypedDict

from pyinfra.api import FactBase


class JobRun(TypedDict):
    ended: int  # seconds since the epoch
    status: int  # its exit status


class JobRuns(FactBase[dict[str, JobRun]]):
    """
    The last run of each job of an app that ran at least once.

    .. code:: python

        {"clearsessions": {"ended": 1795431000, "status": 0},
         "import": {"ended": 1795431900, "status": 1}}
    """

    def command(self, records: str) -> str:  # type: ignore[override]
        """records: the directory of the app's job records."""
        records = shlex.quote(records)
        return f"for f in {records}/*; do [ -f \"$f\" ] && echo \"${{f##*/}} $(cat \"$f\")\"; done; true"

    def process(self, output: Iterable[str]) -> dict[str, JobRun]:  # type: ignore[override]
        runs: dict[str, JobRun] = {}
        for line in output:
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[2].lstrip("-").isdigit():
                runs[parts[0]] = JobRun(ended=int(parts[1]), status=int(parts[2]))
        return runs

    @staticmethod
    def default() -> dict[str, JobRun]:
        return {}
