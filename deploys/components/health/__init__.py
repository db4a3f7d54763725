"""The health gate: a deploy that (re)started an app is done only when the app answers."""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import BaseStateCallback, Host, deploy
from pyinfra.api import State as Run
from pyinfra.api.operation import OperationMeta

from deploys.components.supervisor import Reactions, reload_all
from deploys.engine.ops import Guard, Stamp, command, react
from deploys.model import paths
from deploys.model.inventory import App
from facts.health import health
from facts.state import State


def gate_command(app: App, previous: str | None = None, previous_venv: str | None = None,
                 attempt: str = "-") -> str:
    """Shell: wait for the app to answer; when it does not and the live release is not
    `previous` (a link target), link `previous` and `previous_venv` back, reload, and record
    `attempt` (what the run tried, see AppChanges.attempt) as refused."""
    return health("gate", app.name, app.socket, app.path("logs", "gunicorn.log"), app.health_path,
                  f"{app.health_timeout:g}", paths.current(app), previous or "-", paths.venv(app),
                  previous_venv or "-", reload_all(app), paths.stamp("refused", app), attempt, *app.checked_origins)


def prune(app: App, keep: int) -> str:
    """Shell: remove the releases refused by their candidate check and all but the newest `keep`
    others (never the live one), and the virtualenvs that no remaining release uses."""
    marker = paths.RELEASE_VENV
    return (
        f"cd {app.path('releases')} && live=$(basename \"$(readlink {paths.current(app)})\") && "
        f"for r in $(ls -1 | grep -v '\\.'); do [ -f \"$r/{marker}\" ] || [ \"$r\" = \"$live\" ] || rm -rf \"$r\"; "
        f"done && ls -1 | grep -v '\\.' | sort | head -n -{keep} | grep -vx \"$live\" | xargs -r rm -rf && "
        f"used=$(cat */{marker} 2>/dev/null; basename \"$(readlink {paths.venv(app)})\") && "
        f"cd {app.path('venvs')} && for v in *; do echo \"$used\" | grep -qx \"$v\" || rm -rf \"$v\"; done"
    )


@deploy("Health gate")
def gate(app: App, state: State, reactions: Reactions, nginx_reload: OperationMeta, guard: Guard,
         keep: int, attempt: str) -> None:
    """Wait for the app to answer after it was (re)started or reloaded, or Nginx reloaded; when
    it does not and this run switched its release, switch back to the previous one. Until it has
    passed once for what the app now runs, every run checks again. After it passes, all but the
    newest `keep` releases are removed."""
    passed = Stamp.of(state, paths.stamp("healthy", app), *(stamp.digest for stamp in reactions.stamps))
    live_release = state.paths.get(paths.current(app))
    live_venv = state.paths.get(paths.venv(app))
    check = gate_command(app, live_release.target if live_release else None,
                         live_venv.target if live_venv else None, attempt)
    react(
        f"{app.name}: health gate",
        f"{check} && {prune(app, keep)}",
        [passed],
        [*reactions.ops, nginx_reload],
        guard,
        risky=True,
    )


@deploy("Result")
def failures(guards: list[Guard]) -> None:
    """Fail the host, after every app had its chance, for each app whose deploy failed; and name
    those apps in the very last lines of the run (see Summary)."""
    Summary.watch(host, guards)
    for guard in host.loop(guards):
        command(
            name=f"{guard.app}: all steps succeeded",
            command=f"echo 'djangohost: the deploy of {guard.app} failed; its error is above' >&2; exit 1",
            needed=guard.failed,
            reason=f"{guard.app} deployed",
            _if=guard.failed,
        )


class Summary(BaseStateCallback):
    """Says, as each host disconnects (the last thing pyinfra prints), which apps failed to
    deploy there, so a failed run names them after the results table, not only above it."""

    guards: dict[str, list[Guard]] = {}

    @classmethod
    def watch(cls, host: Host, guards: list[Guard]) -> None:
        if not any(isinstance(handler, cls) for handler in host.state.callback_handlers):
            host.state.add_callback_handler(cls())
        cls.guards[host.name] = guards

    @staticmethod
    def host_disconnect(state: Run, host: Host) -> None:
        guards = Summary.guards.get(host.name, [])
        failed = [guard.app for guard in guards if guard.failed()]
        if failed:
            deployed = [guard.app for guard in guards if guard.ok()]
            logger.error(f"djangohost: {host.name}: the deploy of {', '.join(failed)} FAILED (the error is "
                         f"above); {', '.join(deployed) or 'no app'} deployed")
