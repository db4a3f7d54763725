"""Render the files in templates/ (one template per generated file)."""

from __future__ import annotations

import json
import shlex

import jinja2

from deploys.model.programs import TEMPLATES, backup_tool

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["shquote"] = shlex.quote
# A command line as its words, each quoted: the words reach the program as they are, and no
# shell interprets them (a cron line is run by root's shell).
_env.filters["argv"] = lambda line: " ".join(shlex.quote(word) for word in shlex.split(line))
# An address and port as Nginx and URLs write them: [fd00::2]:80 for IPv6.
_env.filters["hostport"] = lambda address, port: f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
# JSON strings and lists are valid Python literals: templates of Python files use it.
_env.filters["pyrepr"] = json.dumps
# The tool that reads what another user controls (templates/engine/djangohost-safe.py), which every
# app host has: the scripts that read such files call it.
_env.globals["safe_tool"] = backup_tool.SAFE_TOOL


def render(template: str, **context: object) -> str:
    return _env.get_template(template).render(**context)

