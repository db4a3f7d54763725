"""The health gate: a deploy that (re)started an app is done only when the app answers."""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import BaseStateCallback, Host, deploy
from pyinfra.api import State as Run
from pyinfra.api.operation import OperationMeta

from deploys import paths
from deploys.inventory import App
from deploys.ops import Guard, Stamp, command, react
from deploys.supervisor import Reactions, reload_all
from facts.health import python
from facts.state import State

# Waits until the socket accepts and every domain answers through Nginx below 500, retrying
# every half second; past the timeout, fails with the app, the domain, the status and the
# app's log tail.
GATE = r"""
import os, re, subprocess
app, sock, log, path, timeout, current, previous, venv, previous_venv, reload, record, attempt, *origins = sys.argv[1:]

def healthy(timeout):
    global error, bad
    deadline = time.monotonic() + timeout
    while True:
        error = accepting(sock)
        answers = {} if error else statuses(path, origins)
        bad = {d: s for d, s in answers.items() if not 0 < s < 500}
        if not error and not bad:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)

if healthy(float(timeout)):
    sys.exit(0)
rollback = ""
if previous != "-" and os.readlink(current) != previous:
    # This run switched releases: link the previous release and virtualenv back and reload, and
    # record what failed, so that the next run does not link it again (see deploys.app.refused).
    with open(record, "w") as f:
        f.write(attempt + "\n")
    for link, target in ((current, previous), (venv, previous_venv)):
        if target != "-":
            if os.path.lexists(link + ".djangohost-new"):
                os.unlink(link + ".djangohost-new")
            os.symlink(target, link + ".djangohost-new")
            os.replace(link + ".djangohost-new", link)
    subprocess.run(reload, shell=True,
                   stdout=subprocess.DEVNULL)
    first = (error, bad)
    back = healthy(float(timeout))
    rollback = f"; rolled back to {previous}, which {'serves again' if back else 'does not answer either'}"
    error, bad = first
if error:
    problem = f"its Gunicorn socket {sock} does not accept connections ({error})"
else:
    problem = "; ".join(f"{d}{path} answered {s or 'nothing'} through Nginx" for d, s in bad.items())
try:
    with open(log, errors="replace") as f:
        recent = f.readlines()[-300:]
except OSError as e:
    recent = [f"(no log: {e})\n"]
# The app's own exception is often above Gunicorn's; name every distinct one first.
errors = []
for line in recent:
    if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*", line) and line not in errors:
        errors.append(line)
sys.stderr.write(f"djangohost: app {app} is not healthy after {timeout} s: {problem}{rollback}\n"
                 + (f"--- errors in {log}:\n" + "".join(errors[-5:]) if errors else "")
                 + f"--- last lines of {log}:\n" + "".join(recent[-20:]))
sys.exit(1)
"""


def gate_command(app: App, previous: str | None = None, previous_venv: str | None = None,
                 attempt: str = "-") -> str:
    """Shell: wait for the app to answer; when it does not and the live release is not
    `previous` (a link target), link `previous` and `previous_venv` back, reload, and record
    `attempt` (what the run tried, see AppChanges.attempt) as refused."""
    return python(GATE, app.name, app.socket, app.path("logs", "gunicorn.log"), app.health_path,
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
