"""The candidate check: a new release must start and answer before it goes live."""

from __future__ import annotations

from deploys import paths
from deploys.inventory import App
from facts.health import python

# Runs the candidate release in a one-worker Gunicorn on a side socket, as the app's user with its
# environment, and asks every domain's health path straight over that socket: a release that does
# not start or answers 500 is refused before it goes live.
# setpriv, not runuser, switches to the app's user: it execs Gunicorn in its own place, where runuser
# would stay its parent and, sent the SIGTERM that ends the check, wait 2 s before killing it.
CANDIDATE = r"""
import os, pwd, signal, subprocess, tempfile
app, start, release, venv, conf, sock, path, timeout, *origins = sys.argv[1:]
user = pwd.getpwnam(app)
env = dict(os.environ, HOME=user.pw_dir, SHELL=user.pw_shell, USER=app, LOGNAME=app,
           DJANGOHOST_RELEASE=release, DJANGOHOST_VENV=venv, DJANGOHOST_CONF=conf)
if os.path.exists(sock):
    os.unlink(sock)
# Its output goes to a file: a pipe read only at the end would fill with the tracebacks of a
# release that answers 500, and Gunicorn, blocked writing the next one, would answer nothing.
log = tempfile.TemporaryFile()
proc = subprocess.Popen(
    ["setpriv", f"--reuid={app}", f"--regid={app}", "--init-groups", "--", start,
     "--bind", "unix:" + sock, "--workers", "1"],
    env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
deadline = time.monotonic() + float(timeout)
bad = None  # until it answers
try:
    while time.monotonic() < deadline and proc.poll() is None:
        if accepting(sock) is None:
            bad = {d: s for d, s in statuses(path, origins, sock).items() if not 0 < s < 500}
            if bad == {}:
                break
        time.sleep(0.1)
finally:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    log.seek(0)
    output = log.read().decode(errors="replace")
    if os.path.exists(sock):
        os.unlink(sock)
if bad == {}:
    sys.exit(0)
if bad is None:
    problem = f"its Gunicorn {'exited' if proc.returncode else 'did not answer'} within {timeout} s"
else:
    problem = "; ".join(f"{d}{path} answered {s or 'nothing'}" for d, s in bad.items())
sys.stderr.write(f"djangohost: the new release of {app} is refused, the live one keeps serving: {problem}\n"
                 + "".join(output.splitlines(keepends=True)[-30:]))
sys.exit(1)
"""


def candidate_check(app: App, release: str, venv: str) -> str:
    """The shell command that tries the release at `release` with the virtualenv `venv` and the
    staged configuration."""
    return python(CANDIDATE, app.name, paths.gunicorn_start(app), release, venv, paths.conf(app, staged=True),
                  app.path("run", "candidate.sock"), app.health_path, f"{app.health_timeout:g}",
                  *app.origins)
