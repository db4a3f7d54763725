"""deploys.engine.arguments gives pyinfra the global arguments its own function reads, from a cache."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, get_type_hints

import pyinfra
from pyinfra.api import arguments as pyinfra_arguments
from pyinfra.api import util

from deploys.engine.patches import all_global_arguments, operation_order


def test_the_same_arguments_and_types_as_pyinfra():
    theirs = list(get_type_hints(pyinfra_arguments.AllArguments).items())
    assert all_global_arguments() == theirs
    assert ("_sudo", bool) in theirs


def test_a_caller_cannot_change_the_cache():
    all_global_arguments().clear()
    assert all_global_arguments()


def test_it_replaces_pyinfras_where_global_arguments_are_popped():
    assert pyinfra_arguments.all_global_arguments is all_global_arguments


def called_from(depth: int, state: Any, order: Callable[[Any], list[int]]) -> list[int]:
    if depth:
        return called_from(depth - 1, state, order)
    return order(state)


def test_the_same_numbers_as_pyinfra(monkeypatch):
    monkeypatch.setattr(pyinfra, "is_cli", True)
    # The deploy file on the stack, no deploy file, and one that is not on the stack.
    for deploy_file in (__file__, "", "/srv/elsewhere.py"):
        state = SimpleNamespace(current_deploy_filename=deploy_file, current_op_file_number=3)
        for depth in (0, 4):
            pyinfras = util.get_operation_order_from_stack
            ours, theirs = called_from(depth, state, operation_order), called_from(depth, state, pyinfras)
            assert ours == theirs
            if deploy_file == __file__:  # the file number, this test's line, then each call's
                assert len(ours) == depth + 3
            elif deploy_file:
                assert ours == [3]

def test_it_replaces_pyinfras_where_operations_are_made():
    import importlib
    assert importlib.import_module("pyinfra.api.operation").get_operation_order_from_stack is operation_order
