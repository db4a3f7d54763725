"""The app's processes under Supervisor: Gunicorn and its other processes, each one program (<app>,
<app>-<name>), reloaded or restarted only when it must be (its broker, <app>-redis: deploys.components.broker).

Not one Supervisor group: `supervisorctl update` replaces a changed group whole, so a new command
for a worker would restart Gunicorn too. The programs' names keep them side by side."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys.components import Component, Packages, Service, limits, logs
from deploys.engine import ops
from deploys.engine.ops import UNCHANGED, Guard, Stamp, react
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App, HostSettings
from facts.state import State

if TYPE_CHECKING:  # the app component runs its processes and gates: it imports these
    from deploys.components.app import AppChanges


def service(for_checks: bool = False) -> Service:
    """Supervisor's daemon (before the apps' checks where it runs their brokers)."""
    return Service("supervisor", "kill -0 $(cat /run/supervisord.pid 2>/dev/null) 2>/dev/null", for_checks)


def _watched(app: App) -> Sequence[str]:
    return [paths.supervisor_program(app), paths.supervisor_processes(app),
            *(paths.stamp(kind, app) for kind in ("program", "restart", "reload", "programs", "processes"))]


def _packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    """ss, with which an ASGI app's reload counts the connections its old workers close."""
    return Packages(others=("iproute2",)) if any(app.asgi for app in apps) else Packages()


COMPONENT = Component("supervisor", packages=_packages, services=lambda apps: [service()], watched=_watched)


def graceful_reload(app: App) -> str:
    """Shell: reload the app's Gunicorn with HUP until its new workers took over, or start it
    when it is not running (bin/gunicorn-reload)."""
    return paths.gunicorn_reload(app)


def restart_processes(app: App) -> str:
    """Shell: restart the app's processes (not its broker). Each stops before it starts again, so
    that a process that must be unique (Celery beat) never runs twice."""
    return f"supervisorctl restart {' '.join(app.program(process.name) for process in app.processes)}"


def reload_all(app: App) -> str:
    """Shell: what runs the app's code picks up the release and virtualenv now linked."""
    return f"{graceful_reload(app)} && {restart_processes(app)}" if app.processes else graceful_reload(app)


def update(name: str, programs: Iterable[str]) -> str:
    """Shell: add, change or remove `programs` and every program of the app `name` Supervisor
    has (<name>-*) as the configuration now says, leaving every other program alone."""
    # Never a bare `supervisorctl update`, which would apply every app's programs.
    return (f"names=\"{' '.join(programs)} $(supervisorctl avail | awk '$1 ~ /^{name}-/ {{print $1}}')\"; "
            f"[ -z \"${{names# }}\" ] || supervisorctl update $names")


def program_file(app: App, settings: HostSettings, template: str = "supervisor/program.conf.j2") -> str:
    """The app's Supervisor program (Gunicorn), or with processes.conf.j2 those of its processes."""
    return render(template, app=app, gunicorn_start=paths.gunicorn_start(app), run=paths.run_script(app),
                  log_size=logs.size(settings.logs, "supervisor"), log_keep=settings.logs.keep,
                  confine=limits.confine(app),
                  runs_as=("; root starts it in the app's slice, as the app's user (see confine)" if limits.asked(app)
                           else f"user = {app.name}"))


@dataclass
class Reactions:
    """What the Supervisor program did with the app's changes, for the health gate."""

    ops: list[OperationMeta]  # update, restart, reload
    stamps: list[Stamp]


@deploy("Supervisor program")
def program(app: App, settings: HostSettings, state: State, changes: AppChanges, guard: Guard) -> Reactions:
    """The app's Supervisor program (running the start script deploys.components.app writes), and the
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
    restart_stamp = Stamp.of(state, paths.stamp("restart", app), changes.config.start_content)
    reload_stamp = Stamp.of(state, paths.stamp("reload", app), *changes.inputs)

    # `update NAME` adds a new program or restarts a changed one, and leaves the others alone.
    # A failed supervisorctl stops this app's deploy only.
    update_programs = react(
        f"{app.name}: supervisor update", f"supervisorctl update {app.name}",
        [program_stamp, restart_stamp, reload_stamp], [program_conf], guard, risky=True,
    )
    restart = react(
        f"{app.name}: restart gunicorn", f"supervisorctl restart {app.name}",
        [restart_stamp, reload_stamp], [changes.config.start_script], guard,
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
    if app.asgi and reload is not UNCHANGED:
        # How many connections (WebSockets, streams) the old workers closed: bin/gunicorn-reload says.
        ops.tell(name=f"{app.name}: connections of the old workers", op=reload, _if=reload.did_change)
    reactions = Reactions([update_programs, restart, reload], [program_stamp, restart_stamp, reload_stamp])
    if app.processes or paths.supervisor_processes(app) in state.paths:
        processes(app, settings, state, changes, guard, reactions)
    return reactions


def processes(app: App, settings: HostSettings, state: State, changes: AppChanges, guard: Guard,
              reactions: Reactions) -> None:
    """The programs of the app's processes, in a file of their own: a change to one
    of them leaves Gunicorn alone. Changed programs are updated; the processes restart when
    what Gunicorn reloads for changed, after the candidate check passed."""
    path = paths.supervisor_processes(app)
    current = state.paths.get(path)
    content = program_file(app, settings, "supervisor/processes.conf.j2")
    conf = (ops.file(name=f"{app.name}: supervisor programs of its processes", path=path, content=content,
                     owner="root", group="root", mode="644", current=current)
            if app.processes else
            ops.absent(name=f"{app.name}: supervisor programs of its processes removed", path=path, current=current))
    programs_stamp = Stamp.of(state, paths.stamp("programs", app), content)
    restart_stamp = Stamp.of(state, paths.stamp("processes", app), *changes.inputs)
    # The first update starts them with this release: no restart after it.
    first = [restart_stamp] if current is None else []
    names = list(app.code_programs[1:])
    update_processes = react(
        f"{app.name}: supervisor update of its processes", update(app.name, names),
        [programs_stamp, *first], [conf], guard, risky=True,
    )
    reactions.ops.append(update_processes)
    reactions.stamps.append(programs_stamp)
    if app.processes:
        reactions.ops.append(react(
            f"{app.name}: restart processes", restart_processes(app),
            [restart_stamp], changes.ops, guard, unless=[update_processes] if first else [], risky=True,
        ))
        reactions.stamps.append(restart_stamp)
