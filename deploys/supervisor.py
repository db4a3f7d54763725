"""The app's processes under Supervisor: Gunicorn, its broker and its other processes, each one
program (<app>, <app>-redis, <app>-<name>), reloaded or restarted only when it must be.

Not one Supervisor group: `supervisorctl update` replaces a changed group whole, so a new command
for a worker would restart Gunicorn too. The programs' names keep them side by side."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys import broker, limits, logs, ops, paths
from deploys.app import AppChanges
from deploys.inventory import App, HostSettings
from deploys.ops import Guard, Stamp, react
from deploys.templates import render
from facts.state import State


def graceful_reload(app: App) -> str:
    """Shell: reload the app's Gunicorn with HUP, or start it when it is not running."""
    return f"supervisorctl signal HUP {app.name} || supervisorctl start {app.name}"


def restart_processes(app: App) -> str:
    """Shell: restart the app's processes (not its broker). Each stops before it starts again, so
    that a process that must be unique (Celery beat) never runs twice."""
    return f"supervisorctl restart {' '.join(app.program(process.name) for process in app.processes)}"


def reload_all(app: App) -> str:
    """Shell: what runs the app's code picks up the release and virtualenv now linked."""
    return (f"{{ {graceful_reload(app)}; }} && {restart_processes(app)}" if app.processes
            else graceful_reload(app))


def update(name: str, programs: Iterable[str]) -> str:
    """Shell: add, change or remove `programs` and any program of the app `name` Supervisor has
    (<name>-*) as its configuration now says, leaving every other program alone."""
    return (f"supervisorctl update {' '.join(programs)} "
            f"$(supervisorctl avail | awk '$1 ~ /^{name}-/ {{print $1}}')")


def program_file(app: App, settings: HostSettings) -> str:
    """The app's Supervisor programs: Gunicorn, its broker and its processes."""
    return render("supervisor/program.conf.j2", app=app, gunicorn_start=paths.gunicorn_start(app),
                  run=paths.run_script(app), broker_config=paths.broker_config(app),
                  broker_digest=ops.sha256(broker.config(app)) if app.broker else "",
                  log_size=logs.size(settings.logs, "supervisor"), log_keep=settings.logs.keep,
                  confine=limits.confine(app),
                  runs_as=("; root starts it in the app's slice, as the app's user (see confine)" if app.limits
                           else f"user = {app.name}"))


@dataclass
class Reactions:
    """What the Supervisor program did with the app's changes, for the health gate."""

    ops: list[OperationMeta]  # update, restart, reload
    stamps: list[Stamp]


@deploy("Supervisor program")
def program(app: App, settings: HostSettings, state: State, changes: AppChanges, guard: Guard) -> Reactions:
    """The app's Supervisor program (running the start script deploys.app writes), and the
    reaction to changes: add or update the program, restart, or reload gracefully."""
    program_content = program_file(app, settings)
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
    programs = [*app.code_programs, *([app.program("redis")] if app.broker else [])]
    update_programs = react(
        f"{app.name}: supervisor update", update(app.name, programs),
        [program_stamp, restart_stamp, reload_stamp], [program_conf], guard, risky=True,
    )
    restart = react(
        f"{app.name}: restart gunicorn", f"supervisorctl restart {app.name}",
        [restart_stamp, reload_stamp], [changes.start_script], guard,
        unless=[update_programs], risky=True,
    )
    # HUP: the master stays and re-reads its config (environment included); new workers import
    # the release and virtualenv the links now point at while the old workers finish their
    # requests. No request is refused. A program that is not running (a crash before) starts.
    reload = react(
        f"{app.name}: reload gunicorn",
        graceful_reload(app),
        [reload_stamp], changes.ops, guard,
        unless=[update_programs, restart], risky=True,
    )
    reactions = Reactions([update_programs, restart, reload], [program_stamp, restart_stamp, reload_stamp])
    if app.processes:
        # Like Gunicorn's reload, after the candidate check passed; each stops before it starts.
        processes_stamp = Stamp.of(state, paths.stamp("processes", app), *changes.inputs)
        reactions.ops.append(react(
            f"{app.name}: restart processes", restart_processes(app),
            [processes_stamp], changes.ops, guard, risky=True,
        ))
        reactions.stamps.append(processes_stamp)
    return reactions
