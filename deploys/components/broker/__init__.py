"""A Redis of the app's own: run by Supervisor as the app's user, on a unix socket in its run/
directory that only that user can open, like PostgreSQL's peer authentication: the kernel decides
who connects, and there is no password to share. It runs before the app's release is checked: a
project whose every request touches its cache could not pass its check without it."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import deploy

from deploys.components import Component, Packages, Service, limits, logs, supervisor
from deploys.components.broker.contract import BrokerPart
from deploys.engine import ops
from deploys.engine.ops import Guard, Stamp, react
from deploys.engine.templates import render
from deploys.model import paths, schema
from deploys.model.inventory import App, HostSettings
from facts.state import State

#: Debian's package of the Redis server; its own service (a Redis for the whole host, on port
#: 6379) is stopped and disabled: every app has its own.
PACKAGE = "redis-server"


#: Where an app's Redis keeps its snapshot (the app's user only).
DIRECTORY = ("redis", "700")


def maxmemory(app: App) -> str | None:
    """The memory of the app's Redis; None: the app has no broker."""
    return app.part(BrokerPart).maxmemory


def socket(app: App) -> str:
    return app.path("run", "redis.sock")


def _packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    """Redis, and Supervisor which runs it, before the apps' releases are checked."""
    return Packages(checks=(PACKAGE, "supervisor")) if any(maxmemory(app) for app in apps) else Packages()


def _services(apps: Sequence[App]) -> Sequence[Service]:
    return [supervisor.service(for_checks=True)] if any(maxmemory(app) for app in apps) else []


def _watched(app: App) -> Sequence[str]:
    return [paths.broker_config(app), paths.supervisor_broker(app), paths.stamp("broker", app),
            *([app.path(DIRECTORY[0])] if maxmemory(app) else [])]


def check(app: App, state: State) -> None:
    """A Channels app's layer is its Redis (templates/app/djangohost_settings.py.j2): one without a
    broker, nor a layer of the project's own, would send its groups nowhere, silently."""
    if app.needs_channel_layer and not maxmemory(app):
        raise schema.Problem("broker", "the project installs channels, whose channel layer (group messages between "
                                       "workers, and from bin/manage) needs the app's own Redis: set "
                                       "\"broker\": true (or configure a CHANNEL_LAYERS of the project's own, "
                                       "not the in-memory one)")


COMPONENT = Component("broker", contract=BrokerPart, packages=_packages, services=_services, watched=_watched,
                      check=check)


def env(app: App) -> dict[str, str]:
    """What the app's environment gets: where its Redis is, for redis-py and for Celery; nothing
    without a broker."""
    if not maxmemory(app):
        return {}
    return {"REDIS_URL": f"unix://{socket(app)}?db=0",
            "CELERY_BROKER_URL": f"redis+socket://{socket(app)}?virtual_host=0",
            "CELERY_RESULT_BACKEND": f"redis+socket://{socket(app)}?virtual_host=1"}


def config(app: App) -> str:
    return render("broker/redis.conf.j2", app=app, socket=socket(app), maxmemory=maxmemory(app))


def program(app: App, settings: HostSettings) -> str:
    """Its Supervisor program, named <app>-redis."""
    return render("broker/program.conf.j2", app=app, broker_config=paths.broker_config(app),
                  broker_digest=ops.sha256(config(app)), log_size=logs.size(settings.logs, "supervisor"),
                  log_keep=settings.logs.keep, confine=limits.confine(app),
                  runs_as=("; root starts it in the app's slice, as the app's user" if limits.asked(app)
                           else f"user = {app.name}"))


@deploy("Broker")
def host(apps: list[App], state: State) -> None:
    """Each app has a Redis of its own: the package's Redis for the whole host, which its install
    starts, is stopped and disabled."""
    if not any(maxmemory(app) for app in apps):
        return
    ops.command(
        name="Debian's shared Redis stopped and disabled",
        command=("systemctl disable --now redis-server" if state.systemd
                 else "service redis-server stop; update-rc.d redis-server disable"),
        needed=PACKAGE not in state.packages, reason="the shared Redis was stopped when it was installed",
    )


@deploy("Broker")
def broker(app: App, settings: HostSettings, state: State, guard: Guard) -> None:
    """The app's redis.conf and Supervisor program, added or changed (a new redis.conf restarts
    it) before the app's release is checked."""
    if not maxmemory(app):
        return
    name, mode = DIRECTORY
    ops.directory(name=f"{app.name}: {name}/ of its broker", path=app.path(name), owner=app.name, group=app.name,
                  mode=mode, current=state.paths.get(app.path(name)))
    conf = ops.file(
        name=f"{app.name}: redis.conf",
        path=paths.broker_config(app),
        content=config(app),
        owner="root", group=app.name, mode="640",
        current=state.paths.get(paths.broker_config(app)),
    )
    content = program(app, settings)
    program_file = ops.file(
        name=f"{app.name}: supervisor program of its broker",
        path=paths.supervisor_broker(app),
        content=content,
        owner="root", group="root", mode="644",
        current=state.paths.get(paths.supervisor_broker(app)),
    )
    react(f"{app.name}: broker started", f"supervisorctl update {app.program('redis')}",
          [Stamp.of(state, paths.stamp("broker", app), content)], [conf, program_file], guard, risky=True)
