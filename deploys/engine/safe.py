"""What root runs to read a file another user controls, and to show text another user controls:
the host's djangohost-safe (templates/engine/djangohost-safe.py), whose escaping this machine uses
too, so that both sides show an app's text the same way.

    djangohost-safe read --max 64 /webapps/hello run/gunicorn.reloaded   # on the host, as root
    printable(holder)                                                    # here, before printing
"""

from __future__ import annotations

import shlex

from deploys.model.programs import TEMPLATES, backup_tool, safe_tool

SOURCE = TEMPLATES / "engine" / "djangohost-safe.py"
TOOL = backup_tool.SAFE_TOOL
_tool = safe_tool


def is_control(char: str) -> bool:
    """Whether a terminal, or Python's str.splitlines(), acts on `char` rather than shows it: C0
    and C1 controls, DEL, U+2028 and U+2029, bidirectional overrides."""
    control: bool = _tool.is_control(char)
    return control


def printable(text: str, keep: str = "") -> str:
    """`text` with every control character (ESC, CR, C1, U+2028...) but those in `keep` escaped
    as Python writes it (\\x1b): text an app controls, made safe to print on a terminal."""
    result: str = _tool.printable(text, keep)
    return result


def lines(text: str) -> str:
    """Several lines of text an app controls, each made printable; the line breaks stay."""
    return printable(text, keep="\n\t")


def escape_command() -> str:
    """Shell: a filter that escapes its input as printable() does, keeping the last 64 KiB of it."""
    return f"{TOOL} escape"


def read_command(directory: str, path: str, limit: int = 4096) -> str:
    """Shell: print the file `path` below `directory` if it is a regular file of at most `limit`
    bytes, reached without following a link (exit 3: missing, 4: refused)."""
    return f"{TOOL} read --max {limit} {shlex.quote(directory)} {shlex.quote(path)}"
