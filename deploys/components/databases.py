"""An app's database, by its engine: each is a component's (Component.database)."""

from __future__ import annotations

from typing import Any

from deploys.components import registry
from deploys.engine.ops import Guard
from deploys.model.inventory import App
from facts.state import State


def database(app: App, state: State, guard: Guard, **arguments: Any) -> None:
    """The app's database, role or account, on its host (one on a database server is that
    server's, deploys.components.dbserver): its engine's deploy, with pyinfra's `arguments`."""
    if app.database and not app.database_server:
        registry.DATABASES[app.database].deploy(app=app, state=state, guard=guard, **arguments)
