"""How a host's apps are deployed side by side: each app's steps run while its deploy has not
failed (its Guard), one app's failure leaves the others going, and the run ends naming the apps
that failed.

pyinfra types every @deploy as returning one OperationMeta; each() returns what the steps return,
by app (PerApp), and hands each step the value of its own app from the PerApp arguments it gets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyinfra import host, logger
from pyinfra.api import BaseStateCallback, Host, deploy
from pyinfra.api import State as Run

from deploys.engine.ops import Guard, command
from deploys.engine.run import RUN
from deploys.model.inventory import App


class PerApp(dict[str, Any]):
    """What a step returned for each app, by its name: passed to a later step, each app gets its own."""


def guards_of(apps: Sequence[App]) -> dict[str, Guard]:
    return {app.name: Guard(app.name) for app in apps}


def each(apps: Sequence[App], guards: dict[str, Guard], step: Callable[..., Any], unguarded: bool = False,
         **arguments: Any) -> PerApp:
    """Call the @deploy `step` for each app with its guard, as long as the app's deploy has not failed
    (or, `unguarded`, whatever happened: a step that judges the app's failures itself)."""
    done = PerApp()
    for app in host.loop(apps):
        guard = guards[app.name]
        own = {key: value[app.name] if isinstance(value, PerApp) else value for key, value in arguments.items()}
        done[app.name] = step(app=app, guard=guard, **own, **({} if unguarded else {"_if": guard.ok}))
    return done


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

    @classmethod
    def watch(cls, host: Host, guards: list[Guard]) -> None:
        if not any(isinstance(handler, cls) for handler in host.state.callback_handlers):
            host.state.add_callback_handler(cls())
        RUN.guards[host.name] = guards

    @staticmethod
    def host_disconnect(state: Run, host: Host) -> None:
        guards = RUN.guards.get(host.name, [])
        failed = [guard.app for guard in guards if guard.failed()]
        if failed:
            deployed = [guard.app for guard in guards if guard.ok()]
            logger.error(f"djangohost: {host.name}: the deploy of {', '.join(failed)} FAILED (the error is "
                         f"above); {', '.join(deployed) or 'no app'} deployed")
