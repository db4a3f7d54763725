"""Resource limits per app: a systemd slice, djangohost-<app>.slice, whose MemoryMax, CPUQuota
and TasksMax hold for every process of the app together. Supervisor has no resource control of
its own: it starts each of the app's programs (and cron each job) in a scope of that slice, as
root, which drops to the app's user (setpriv, with the app's groups and no other)."""

from __future__ import annotations

from pyinfra.api import deploy

from deploys.components import Component
from deploys.components.limits.contract import LimitsEntry, LimitsPart
from deploys.engine import ops
from deploys.engine.ops import Guard, Stamp, react
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App
from deploys.model.schema import Problem
from facts.state import State


def asked(app: App) -> LimitsEntry | None:
    """The app's limits, if it has any."""
    return app.part(LimitsPart).limits


def slice_name(app: App) -> str:
    return f"djangohost-{app.name}.slice"


def properties(app: App) -> dict[str, str]:
    """The slice's limits; one the app does not set is lifted."""
    limits = asked(app)
    return {"MemoryMax": limits and limits.memory or "infinity",
            "CPUQuota": limits and limits.cpu or "",
            "TasksMax": str(limits and limits.tasks or "infinity")}


def confine(app: App) -> str:
    """What a command of the app is prefixed with to run in its slice as its user; nothing
    without limits (Supervisor's `user=` and runuser then drop to the app's user)."""
    if not asked(app):
        return ""
    return (f"systemd-run --scope --quiet --slice={slice_name(app)} -- "
            f"setpriv --reuid={app.name} --regid={app.name} --init-groups -- ")


@deploy("Limits")
def limits(app: App, state: State, guard: Guard) -> None:
    """The app's slice unit, applied to the running slice when it changed (no restart: systemd
    changes a running slice's limits in place); kept with no limits once it was made."""
    if not asked(app) and paths.slice_unit(app) not in state.paths:
        return
    wanted = properties(app)
    content = render("limits/app.slice.j2", app=app, properties=wanted)
    unit = ops.file(
        name=f"{app.name}: {slice_name(app)}",
        path=paths.slice_unit(app),
        content=content,
        owner="root", group="root", mode="644",
        current=state.paths.get(paths.slice_unit(app)),
    )
    now = " ".join(f"{key}={value}" for key, value in wanted.items())
    react(f"{app.name}: limits applied", f"systemctl daemon-reload && systemctl set-property --runtime "
                                         f"{slice_name(app)} {now}",
          [Stamp.of(state, paths.stamp("limits", app), content)], [unit])


def check(app: App, state: State) -> None:
    if asked(app) and not state.systemd:
        raise Problem("limits", "this host runs without systemd, whose resource control applies them (Supervisor "
                                "has none); remove them or use a host with systemd")


COMPONENT = Component("limits", contract=LimitsPart, check=check,
                      watched=lambda app: [paths.slice_unit(app), paths.stamp("limits", app)])
