"""The health gate: a deploy that (re)started an app is done only when the app answers."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys import paths
from deploys.inventory import App
from deploys.ops import Guard, Stamp, command, react
from deploys.supervisor import Reactions
from facts.health import python
from facts.state import State

# Waits until the socket accepts and every domain answers through Nginx below 500, retrying
# every half second; past the timeout, fails with the app, the domain, the status and the
# app's log tail.
GATE = r"""
import re
app, sock, log, path, timeout, *domains = sys.argv[1:]
deadline = time.monotonic() + float(timeout)
while True:
    error = accepting(sock)
    answers = {} if error else statuses(path, domains)
    bad = {d: s for d, s in answers.items() if not 0 < s < 500}
    if not error and not bad:
        sys.exit(0)
    if time.monotonic() > deadline:
        break
    time.sleep(0.5)
if error:
    problem = f"its Gunicorn socket {sock} does not accept connections ({error})"
else:
    problem = "; ".join(f"http://{d}{path} answered {s or 'nothing'} through Nginx" for d, s in bad.items())
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
sys.stderr.write(f"djangohost: app {app} is not healthy after {timeout} s: {problem}\n"
                 + (f"--- errors in {log}:\n" + "".join(errors[-5:]) if errors else "")
                 + f"--- last lines of {log}:\n" + "".join(recent[-20:]))
sys.exit(1)
"""


@deploy("Health gate")
def gate(app: App, state: State, reactions: Reactions, nginx_reload: OperationMeta, guard: Guard) -> None:
    """Wait for the app to answer after it was (re)started or reloaded, or Nginx reloaded. Until
    it has passed once for what the app now runs, every run checks again."""
    passed = Stamp.of(state, paths.stamp("healthy", app), *(stamp.digest for stamp in reactions.stamps))
    react(
        f"{app.name}: health gate",
        python(GATE, app.name, app.socket, app.path("logs", "gunicorn.log"), app.health_path,
               str(app.health_timeout), *app.domains),
        [passed],
        [*reactions.ops, nginx_reload],
        guard,
        risky=True,
    )


@deploy("Failed apps")
def failures(guards: list[Guard]) -> None:
    """Fail the host, after every app had its chance, for each app whose deploy failed."""
    for guard in host.loop(guards):
        command(
            name=f"{guard.app}: deploy failed",
            command=f"echo 'djangohost: the deploy of {guard.app} failed; its error is above' >&2; exit 1",
            needed=guard.failed,
            reason=f"{guard.app} deployed",
            _if=guard.failed,
        )
