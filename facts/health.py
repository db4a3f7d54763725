"""An app's answer through the local Nginx, as a visitor to each of its domains would get it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from pathlib import Path

from pyinfra.api import FactBase

# Run on the host with python3 (there for the virtualenvs): the checks the facts, the candidate
# check and the health gate share (see the program's docstring).
PROGRAM = (Path(__file__).resolve().parent.parent / "templates" / "health" / "health.py").read_text()


def health(command: str, *args: str) -> str:
    """Shell: the health program's `command` with `args`."""
    return " ".join(["python3", "-c", shlex.quote(PROGRAM), command, *map(shlex.quote, args)])


class AppHealth(FactBase[dict[str, int]]):
    """
    The HTTP status of `path` for each of an app's `domains` (or origins, https://domain for an
    app with TLS), requested through the local Nginx, redirects within them followed (0: no HTTP
    answer at all).

    .. code:: python

        {"hello.test": 200, "www.hello.test": 200}
    """

    def command(self, domains: list[str] | str, path: str = "/") -> str:  # type: ignore[override]
        if isinstance(domains, str):  # from the command line: domains=a.test,b.test
            domains = domains.split(",")
        return f"{health('statuses', path, *domains)} 2>/dev/null || echo '{{}}'"

    def process(self, output: Iterable[str]) -> dict[str, int]:  # type: ignore[override]
        text = "\n".join(output).strip()
        try:
            return {str(k).rpartition("://")[2]: int(v) for k, v in json.loads(text or "{}").items()}
        except (ValueError, AttributeError):
            return {}

    @staticmethod
    def default() -> dict[str, int]:
        return {}
