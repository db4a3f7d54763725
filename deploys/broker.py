"""A Redis of the app's own: run by Supervisor as the app's user (see deploys.supervisor), on a
unix socket in its run/ directory that only that user can open, like PostgreSQL's peer
authentication: the kernel decides who connects, and there is no password to share."""

from __future__ import annotations

from pyinfra.api import deploy

from deploys import ops, paths
from deploys.inventory import App
from deploys.templates import render
from facts.state import State

#: Debian's package of the Redis server; its own service (a Redis for the whole host, on port
#: 6379) is stopped and disabled: every app has its own.
PACKAGE = "redis-server"


def packages(apps: list[App]) -> list[str]:
    return [PACKAGE] if any(app.broker for app in apps) else []


def url(app: App) -> dict[str, str]:
    """What the app's environment gets: where its Redis is, for redis-py and for Celery."""
    return {"REDIS_URL": f"unix://{app.broker_socket}?db=0",
            "CELERY_BROKER_URL": f"redis+socket://{app.broker_socket}?virtual_host=0",
            "CELERY_RESULT_BACKEND": f"redis+socket://{app.broker_socket}?virtual_host=1"}


def config(app: App) -> str:
    return render("app/redis.conf.j2", app=app)


@deploy("Broker")
def broker(app: App, state: State) -> None:
    """The app's redis.conf (Supervisor's program runs it)."""
    ops.file(
        name=f"{app.name}: redis.conf",
        path=paths.broker_config(app),
        content=config(app),
        owner="root", group=app.name, mode="640",
        current=state.paths.get(paths.broker_config(app)),
    )
