"""The health gate: a deploy that (re)started an app is done only when the app answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys.components import Component
from deploys.components.health.contract import HealthPart
from deploys.components.supervisor import Reactions, reload_all
from deploys.engine.ops import Guard, Stamp, react
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App
from facts.health import health
from facts.state import State

if TYPE_CHECKING:  # the app component runs its processes and gates: it imports these
    from deploys.components.app import AppChanges


def gate_command(app: App, previous: str | None = None, previous_venv: str | None = None,
                 attempt: str = "-") -> str:
    """Shell: wait for the app to answer; when it does not and the live release is not
    `previous` (a link target), link `previous` and `previous_venv` back, reload, and record
    `attempt` (what the run tried, see AppChanges.attempt) as refused."""
    asked = app.part(HealthPart)
    return health("gate", app.name, app.socket, app.path("logs", "gunicorn.log"), asked.health_path,
                  f"{asked.health_timeout:g}", paths.current(app), previous or "-", paths.venv(app),
                  previous_venv or "-", reload_all(app), paths.stamp("refused", app), attempt, *app.checked_origins)


def prune(app: App, keep: int) -> str:
    """Shell: remove the releases refused by their candidate check and all but the newest `keep`
    others (never the live one), and the virtualenvs that no remaining release uses
    (templates/health/prune.sh.j2)."""
    return render("health/prune.sh.j2", app=app, keep=keep, current=paths.current(app), venv=paths.venv(app),
                  marker=paths.RELEASE_VENV)


@deploy("Health gate")
def gate(app: App, state: State, reactions: Reactions, nginx_reload: OperationMeta, guard: Guard,
         keep: int, changes: AppChanges) -> None:
    """Wait for the app to answer after it was (re)started or reloaded, or Nginx reloaded; when
    it does not and this run switched its release, switch back to the previous one. Until it has
    passed once for what the app now runs, every run checks again. After it passes, all but the
    newest `keep` releases are removed."""
    passed = Stamp.of(state, paths.stamp("healthy", app), *(stamp.digest for stamp in reactions.stamps))
    live_release = state.paths.get(paths.current(app))
    live_venv = state.paths.get(paths.venv(app))
    check = gate_command(app, live_release.target if live_release else None,
                         live_venv.target if live_venv else None, changes.attempt)
    react(
        f"{app.name}: health gate",
        f"{check} && (\n{prune(app, keep)})",
        [passed],
        [*reactions.ops, nginx_reload],
        guard,
        risky=True,
    )


COMPONENT = Component("health", contract=HealthPart,
                      watched=lambda app: [paths.stamp("healthy", app), paths.stamp("refused", app)])
