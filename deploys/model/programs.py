"""The programs djangohost ships to hosts that the planner runs too, imported from templates/ as
modules: what decides a virtualenv, the backup tool's names and rules, the safe reader's escaping.
The planner and the host run the same code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def program(path: str) -> ModuleType:
    """The Python program templates/`path`, imported (once) as a module."""
    name = "djangohost_" + Path(path).stem.replace("-", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TEMPLATES / path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


#: /usr/local/sbin/djangohost-backup (templates/backups/djangohost-backup.py).
backup_tool = program("backups/djangohost-backup.py")
#: /usr/local/sbin/djangohost-safe (templates/engine/djangohost-safe.py).
safe_tool = program("engine/djangohost-safe.py")
#: What decides a virtualenv (templates/app/dependencies.py).
dependencies = program("app/dependencies.py")
