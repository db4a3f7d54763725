"""Gunicorn under Supervisor: one program per app, reloaded or restarted only when it must be."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys import ops, paths
from deploys.app import AppChanges
from deploys.inventory import App
from deploys.ops import Guard, Stamp, react
from deploys.templates import render
from facts.state import State


def graceful_reload(app: App) -> str:
    """Shell: reload the app's Gunicorn with HUP, or start it when it is not running."""
    return f"supervisorctl signal HUP {app.name} || supervisorctl start {app.name}"


@dataclass
class Reactions:
    """What the Supervisor program did with the app's changes, for the health gate."""

    ops: list[OperationMeta]  # update, restart, reload
    stamps: list[Stamp]


@deploy("Supervisor program")
def program(app: App, state: State, changes: AppChanges, guard: Guard) -> Reactions:
    """The app's Supervisor program (running the start script deploys.app writes), and the
    reaction to changes: add or update the program, restart, or reload gracefully."""
    program_content = render("supervisor/program.conf.j2", app=app,
                             gunicorn_start=paths.gunicorn_start(app))
    program_conf = ops.file(
        name=f"{app.name}: supervisor program",
        path=paths.supervisor_program(app),
        content=program_content,
        owner="root", group="root", mode="644",
        current=state.paths.get(paths.supervisor_program(app)),
    )

    program_stamp = Stamp.of(state, paths.stamp("program", app), program_content)
    restart_stamp = Stamp.of(state, paths.stamp("restart", app), changes.start_content)
    reload_stamp = Stamp.of(state, paths.stamp("reload", app), *changes.inputs)

    # `update NAME` adds a new program or restarts a changed one, and leaves the others alone.
    # A failed supervisorctl stops this app's deploy only.
    update = react(
        f"{app.name}: supervisor update", f"supervisorctl update {app.name}",
        [program_stamp, restart_stamp, reload_stamp], [program_conf], guard, risky=True,
    )
    restart = react(
        f"{app.name}: restart gunicorn", f"supervisorctl restart {app.name}",
        [restart_stamp, reload_stamp], [changes.start_script], guard,
        unless=[update], risky=True,
    )
    # HUP: the master stays and re-reads its config (environment included); new workers import
    # the release and virtualenv the links now point at while the old workers finish their
    # requests. No request is refused. A program that is not running (a crash before) starts.
    reload = react(
        f"{app.name}: reload gunicorn",
        graceful_reload(app),
        [reload_stamp], changes.ops, guard,
        unless=[update, restart], risky=True,
    )
    return Reactions([update, restart, reload], [program_stamp, restart_stamp, reload_stamp])
