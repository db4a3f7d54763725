"""The database engines an app may choose (its `database` entry), each a component of its own with
database(), database_url() and exists()."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from deploys.components import mariadb, postgres
from deploys.engine.ops import Guard
from deploys.model.inventory import App
from facts.state import State

ENGINES: dict[str, ModuleType] = {"postgresql": postgres, "mariadb": mariadb}


def database(app: App, state: State, guard: Guard, **arguments: Any) -> None:
    """The app's database, role or account, on its host (one on a database server is that
    server's, deploys.components.dbserver): its engine's deploy, with pyinfra's `arguments`."""
    if app.database and not app.database_server:
        ENGINES[app.database].database(app=app, state=state, guard=guard, **arguments)
