"""pyinfra's global arguments (`_sudo`, `_if`, ...) and their types, read once.

pyinfra 3.10 evaluates the type hints of its AllArguments for every operation, @deploy call and
fact it prepares (typing.get_type_hints, about 1 ms each): a sixth of preparing a no-op run over
8 app servers. They never change while pyinfra runs: all_global_arguments() reads them once, and
replaces pyinfra's function where pop_global_arguments calls it.
"""

from __future__ import annotations

import functools
from typing import get_type_hints

from pyinfra.api import arguments as pyinfra_arguments
from pyinfra.api.arguments import AllArguments


@functools.cache
def _global_arguments() -> tuple[tuple[str, type], ...]:
    return tuple(get_type_hints(AllArguments).items())


def all_global_arguments() -> list[tuple[str, type]]:
    """pyinfra.api.arguments.all_global_arguments: each global argument's name and type."""
    return list(_global_arguments())


pyinfra_arguments.all_global_arguments = all_global_arguments
