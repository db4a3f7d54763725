"""What djangohost changes in pyinfra, all in this one module: two of pyinfra 3.10's own functions,
replaced by faster ones that compute the same (tests/unit/test_patches.py compares them with
pyinfra's). Every deploy file imports it (through deploys/__init__.py) before any operation.

1. pyinfra.api.arguments.all_global_arguments: pyinfra's global arguments (`_sudo`, `_if`, ...)
   and their types, read once. pyinfra 3.10 evaluates the type hints of its AllArguments for every
   operation, @deploy call and fact it prepares (typing.get_type_hints, about 1 ms each): a sixth
   of preparing a no-op run over 8 app servers. They never change while pyinfra runs.

2. pyinfra.api.util.get_operation_order_from_stack: the order of operations, as pyinfra computes
   it, without inspect.stack(). pyinfra (CLI mode) orders operations by the line numbers of the
   calls that led to each one, read from the stack; pyinfra 3.10 reads them with inspect.stack(),
   which for every frame loads its source line and searches sys.modules for its module: about 3 ms
   an operation, and 4 s of the 9 s that preparing a no-op deploy of 30 apps took. These read the
   same numbers straight off the frames.
"""

from __future__ import annotations

import functools
import importlib
import sys
from types import FrameType
from typing import Any, get_type_hints

import pyinfra
from pyinfra.api import arguments as pyinfra_arguments
from pyinfra.api.arguments import AllArguments
from pyinfra.api.util import PYINFRA_INSTALL_DIR


@functools.cache
def _global_arguments() -> tuple[tuple[str, type], ...]:
    return tuple(get_type_hints(AllArguments).items())


def all_global_arguments() -> list[tuple[str, type]]:
    """pyinfra.api.arguments.all_global_arguments: each global argument's name and type."""
    return list(_global_arguments())


pyinfra_arguments.all_global_arguments = all_global_arguments


def operation_order(state: Any) -> list[int]:
    """pyinfra.api.util.get_operation_order_from_stack, to the number: from the outermost call in
    the deploy file being run, the line of each call outside pyinfra's own code."""
    frames: list[FrameType] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()

    start = 0
    if state.current_deploy_filename:
        # None in the deploy file: pyinfra's loop ends on its own frame, which it then skips.
        start = next((i for i, frame in enumerate(frames)
                      if frame.f_code.co_filename == state.current_deploy_filename), len(frames))
    numbers = [state.current_op_file_number] if pyinfra.is_cli else []
    numbers += [frame.f_lineno for frame in frames[start:]
                if not frame.f_code.co_filename.startswith(PYINFRA_INSTALL_DIR)]
    return numbers


# The module, not pyinfra.api.operation: that name is the @operation decorator, which pyinfra.api exports.
importlib.import_module("pyinfra.api.operation").get_operation_order_from_stack = operation_order  # type: ignore[attr-defined]
