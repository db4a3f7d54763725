"""deploys.arguments gives pyinfra the global arguments its own function reads, from a cache."""

from __future__ import annotations

from typing import get_type_hints

from pyinfra.api import arguments as pyinfra_arguments

from deploys.arguments import all_global_arguments


def test_the_same_arguments_and_types_as_pyinfra():
    theirs = list(get_type_hints(pyinfra_arguments.AllArguments).items())
    assert all_global_arguments() == theirs
    assert ("_sudo", bool) in theirs


def test_a_caller_cannot_change_the_cache():
    all_global_arguments().clear()
    assert all_global_arguments()


def test_it_replaces_pyinfras_where_global_arguments_are_popped():
    assert pyinfra_arguments.all_global_arguments is all_global_arguments
