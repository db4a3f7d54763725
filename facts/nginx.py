"""Nginx's configuration as Nginx itself judges it, and the sites it serves."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypedDict

from pyinfra.api import FactBase

SITES_ENABLED = "/etc/nginx/sites-enabled"
SERVER_NAME = re.compile(r"(?:^|[\s{;])server_name\s+([^;]*);")


class NginxState(TypedDict):
    installed: bool
    valid: bool
    error: str | None
    sites: dict[str, list[str]]


class Nginx(FactBase[NginxState]):
    """
    Whether `nginx -t` passes (with its error text when not), and every enabled site with its
    server names.

    .. code:: python

        {"installed": True, "valid": True, "error": None,
         "sites": {"hello": ["hello.test", "www.hello.test"], "djangohost-default": ["_"]}}
    """

    def command(self) -> str:
        return (
            "command -v nginx >/dev/null || { echo 'nginx not installed'; exit 0; }; "
            "out=$(nginx -t 2>&1); printf 'test\\t%s\\n' \"$?\"; printf '%s\\n' \"$out\" | sed 's/^/out\\t/'; "
            f"for f in {SITES_ENABLED}/*; do [ -e \"$f\" ] || continue; "
            "printf 'site\\t%s\\n' \"${f##*/}\"; sed 's/^/conf\\t/' \"$f\"; done"
        )

    def process(self, output: Iterable[str]) -> NginxState:  # type: ignore[override]
        state = NginxState(installed=True, valid=False, error=None, sites={})
        errors: list[str] = []
        site = None
        for line in output:
            if line == "nginx not installed":
                return self.default()
            kind, _, rest = line.partition("\t")
            if kind == "test":
                state["valid"] = rest == "0"
            elif kind == "out" and ("[emerg]" in rest or "[alert]" in rest or "failed" in rest):
                errors.append(rest.strip())
            elif kind == "site":
                site = rest
                state["sites"][site] = []
            elif kind == "conf" and site is not None:
                for match in SERVER_NAME.finditer(rest.split("#", 1)[0]):
                    state["sites"][site] += match.group(1).split()
        if not state["valid"]:
            state["error"] = "\n".join(errors) or "nginx -t failed"
        return state

    @staticmethod
    def default() -> NginxState:
        return NginxState(installed=False, valid=False, error="nginx is not installed", sites={})
