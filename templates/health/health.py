"""managed by djangohost: an app's answers, as its candidate check, its health gate and the status
view ask for them (python3 on the host; run as `python3 -c PROGRAM COMMAND ARGS...`).

    accepting SOCKET                 whether a Gunicorn socket accepts a connection
    status JSON                      every app's socket and answers, for the status view
    candidate APP START RELEASE VENV CONF PATH TIMEOUT ORIGIN...
    gate APP SOCKET LOG PATH TIMEOUT CURRENT PREVIOUS VENV PREVIOUS_VENV RELOAD RECORD ATTEMPT ORIGIN...

An origin is https://domain, http://domain (or a bare domain), or lb-https://domain: behind the
load balancer, which ends TLS, plain HTTP saying it came over https. Redirects within the app's own
origins are followed and the final answer is judged: a redirect elsewhere, a 400, a 5xx or no
answer at all is a failure, and says so.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin, urlsplit

REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10
# Answers judged bad, in a row, before a check gives up: a broken release fails in about a
# second, not after the whole timeout (each try of a 500 writes the app's error rows and logs).
TRIES = 3
PAUSE = 0.5
# Written before a request's traceback by the app's settings (djangohost_settings.py): where the
# app's own error starts in its output.
TRACEBACK_MARK = "djangohost: request error"
# Characters of text an app controls (its log) that a terminal or Python acts on rather than shows:
# C0 and C1 controls, DEL, the line and paragraph separators, the bidirectional overrides. The same
# as djangohost-safe's is_control (a unit test compares them); shown escaped, newlines and tabs kept.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069]")


def escaped(text: str) -> str:
    """`text` with every control character but newline and tab written as \\xNN or \\uNNNN."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}" if ord(match.group()) < 0x100
                       else f"\\u{ord(match.group()):04x}", text)


def accepting(path: str) -> str | None:
    """None when the socket at `path` accepts a connection (Gunicorn's master accepts for its
    workers: the app is served), else why not. The socket is in the app's run/, which the app's
    user writes: root connects through a descriptor of the path itself (O_PATH, O_NOFOLLOW), and
    only to a socket; a link there would lead root where the app cannot go."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        return error.strerror or str(error)
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(2)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return "not a socket"
        sock.connect(f"/proc/self/fd/{fd}")
        return None
    except OSError as error:
        return error.strerror or str(error)
    finally:
        sock.close()
        os.close(fd)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(self.socket_path)


class LocalHTTPSConnection(http.client.HTTPSConnection):
    # The local Nginx by address, with the domain as SNI; what is checked is the app's answer,
    # not the certificate (which may be a placeholder until ACME issued the real one).
    def __init__(self, domain: str) -> None:
        super().__init__("127.0.0.1", 443, timeout=10, context=ssl._create_unverified_context())
        self.domain = domain

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.domain)  # type: ignore[attr-defined]


def split_origin(origin: str) -> tuple[str, str]:
    """(scheme as checked, domain) of an origin; a bare domain is http."""
    scheme, _, domain = origin.rpartition("://")
    return scheme or "http", domain


def public(origin: str) -> str:
    """The origin a visitor sees: https://domain for lb-https://domain."""
    scheme, domain = split_origin(origin)
    return f"{scheme.removeprefix('lb-')}://{domain}"


def ask(scheme: str, domain: str, path: str, socket_path: str | None = None) -> tuple[int, str | None]:
    """One GET of `path` at `domain` (`scheme` as checked, see split_origin), through the local
    Nginx or straight to a Gunicorn socket as Nginx would pass it on: the status (0: no HTTP
    answer) and the Location header."""
    if socket_path:
        conn: http.client.HTTPConnection = UnixHTTPConnection(socket_path)
    elif scheme == "https":
        conn = LocalHTTPSConnection(domain)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
    headers = {"Host": domain, "User-Agent": "djangohost-health", "X-Forwarded-Proto": scheme.removeprefix("lb-")}
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Location")
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        conn.close()


def served(url: str) -> str:
    """The origin of an absolute URL, its default port left out."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = (parts.hostname or "") + (f":{port}" if port not in (None, default) else "")
    return f"{parts.scheme}://{host}"


def checked_as(url: str, origins: list[str]) -> str | None:
    """The scheme `url` is checked with, when it is one of `origins` (a wildcard domain matches the
    names under it); None when the app does not serve it."""
    wanted = served(url)
    for origin in origins:
        scheme, domain = split_origin(origin)
        visible = public(origin)
        if visible == wanted or (domain.startswith("*.") and wanted.startswith(visible.split("*")[0])
                                 and wanted.endswith(domain[1:])):
            return scheme
    return None


def judge(origin: str, path: str, origins: list[str], socket_path: str | None = None) -> tuple[int, str, str | None]:
    """Ask `path` at `origin`, following redirects within `origins`: the final status, the URL
    that gave it, and what is wrong with it (None: healthy)."""
    url = public(origin) + path
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        status, location = ask(checked_as(url, origins) or "http", parts.hostname or "", target, socket_path)
        if status not in REDIRECTS:
            return status, url, problem(status)
        if not location:
            return status, url, f"answered {status} without a Location"
        following = urljoin(url, location)
        if checked_as(following, origins) is None:
            return status, url, (f"redirects to {following}, which the app does not serve "
                                 f"(it serves {', '.join(public(other) for other in origins)})")
        url = following
    return status, url, f"redirects more than {MAX_REDIRECTS} times"


def problem(status: int) -> str | None:
    if status == 0:
        return "gave no HTTP answer"
    if status == 400:
        return "answered 400 Bad Request"
    if status >= 500:
        return f"answered {status}"
    return None


def statuses(path: str, origins: list[str], socket_path: str | None = None) -> dict[str, int]:
    """The final status of `path` at each origin (0: no HTTP answer)."""
    return {origin: judge(origin, path, origins, socket_path)[0] for origin in origins}


def problems(path: str, origins: list[str], socket_path: str | None = None) -> dict[str, str]:
    """What is wrong at each origin that is not healthy, by the URL that answered."""
    found = {}
    for origin in origins:
        _, url, wrong = judge(origin, path, origins, socket_path)
        if wrong:
            found[url] = wrong
    return found


def healthy(path: str, origins: list[str], timeout: float, socket_path: str | None = None,
            serving: str | None = None, running: subprocess.Popen | None = None) -> dict[str, str]:
    """Wait until every origin answers well: {} then, else what was wrong at the end. Until the
    `serving` socket accepts, and while nothing answers, it waits up to `timeout`; answers that are
    wrong fail it after TRIES tries in a row."""
    deadline = time.monotonic() + timeout
    wrong = {"": f"did not answer within {timeout:g} s"}
    tries = 0
    while time.monotonic() < deadline and (running is None or running.poll() is None):
        refused = accepting(serving) if serving else None
        if refused is None:
            wrong = problems(path, origins, socket_path)
            if not wrong:
                return {}
            answered = all(not message.startswith("gave no") for message in wrong.values())
            tries = tries + 1 if answered else 0
            if tries >= TRIES:
                break
        else:
            wrong = {serving or "": f"does not accept connections ({refused})"}
        time.sleep(PAUSE)
    return wrong


def said(wrong: dict[str, str]) -> str:
    return "; ".join(f"{url} {message}".strip() for url, message in wrong.items())


def tail(lines: list[str], count: int) -> str:
    """The app's last traceback (from the mark its settings write), else its last `count` lines;
    escaped: the text is the app's."""
    marks = [index for index, line in enumerate(lines) if TRACEBACK_MARK in line]
    shown = lines[marks[-1]:marks[-1] + 100] if marks else lines[-count:]
    return escaped("".join(shown))


def status(apps_json: str) -> None:
    """Every app's socket and answers, for facts.status (threads: one python3 for all apps)."""
    mark = "--- djangohost section"

    def check(app: list) -> tuple[str, str | None, dict[str, int]]:
        name, socket_path, origins, path = app
        return name, accepting(socket_path), statuses(path, origins)

    with ThreadPoolExecutor(8) as pool:
        for name, error, health in pool.map(check, json.loads(apps_json)):
            print(f"{mark} accept {name}", answer(error), f"{mark} health {name}", json.dumps(health), sep="\n")


def answer(error: str | None) -> str:
    """A socket's line as facts.gunicorn reads it."""
    return "accepting" if error is None else "refusing " + error


def listening() -> tuple[socket.socket, str]:
    """A unix socket made by root in a directory of root's own, listening: the candidate's Gunicorn
    gets it by descriptor, and nothing the app controls stands between root and what it asks."""
    path = os.path.join(tempfile.mkdtemp(prefix="djangohost-candidate-"), "gunicorn.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.listen(64)
    return sock, path


def candidate(app: str, start: str, release: str, venv: str, conf: str, path: str, timeout: str,
              *origins: str) -> int:
    """Run the candidate release in a one-worker Gunicorn as the app's user with its environment,
    and ask each origin's health path straight at its socket: a release that does not start or
    answers badly is refused before it goes live."""
    import pwd

    user = pwd.getpwnam(app)
    env = dict(os.environ, HOME=user.pw_dir, SHELL=user.pw_shell, USER=app, LOGNAME=app,
               DJANGOHOST_RELEASE=release, DJANGOHOST_VENV=venv, DJANGOHOST_CONF=conf)
    sock, sock_path = listening()
    # Its output goes to a file: a pipe read only at the end would fill with the tracebacks of a
    # release that answers 500, and Gunicorn, blocked writing the next one, would answer nothing.
    log = tempfile.TemporaryFile()
    # The socket reaches Gunicorn as systemd would hand it over (descriptor 3, LISTEN_FDS and
    # LISTEN_PID, which the shell sets to its own pid before it execs): Gunicorn then leaves it to
    # its owner as it stops, and never tries to unlink it from root's directory. setpriv, not
    # runuser: it execs Gunicorn in its own place, where runuser would stay its parent and, sent the
    # SIGTERM that ends the check, wait 2 s before killing it.
    proc = subprocess.Popen(
        ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh",
         "setpriv", f"--reuid={app}", f"--regid={app}", "--init-groups", "--", start, "--workers", "1"],
        env={**env, "LISTEN_FDS": "1"}, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, pass_fds=(3,), preexec_fn=lambda: os.dup2(sock.fileno(), 3))
    try:
        wrong = healthy(path, list(origins), float(timeout), socket_path=sock_path, serving=sock_path, running=proc)
        exited = proc.poll()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        sock.close()
        os.unlink(sock_path)
        os.rmdir(os.path.dirname(sock_path))
    if not wrong:
        return 0
    problem = f"its Gunicorn exited ({exited}) before it answered" if exited is not None else said(wrong)
    log.seek(0)
    output = log.read().decode(errors="replace").splitlines(keepends=True)
    sys.stderr.write(f"djangohost: the new release of {app} is refused, the live one keeps serving: "
                     f"{problem}\n" + tail(output, 30))
    return 1


def switch_back(current: str, previous: str, venv: str, previous_venv: str) -> None:
    """Link the previous release and virtualenv back, each with one rename."""
    for link, target in ((current, previous), (venv, previous_venv)):
        if target != "-":
            temp = link + ".djangohost-new"
            if os.path.lexists(temp):
                os.unlink(temp)
            os.symlink(target, temp)
            os.replace(temp, link)


def gate(app: str, sock: str, log: str, path: str, timeout: str, current: str, previous: str, venv: str,
         previous_venv: str, reload: str, record: str, attempt: str, *origins: str) -> int:
    """Wait until the app answers through Nginx; when it does not and this run switched its
    release, link the previous one back, reload, and record what failed (see deploys.components.app.refused)."""
    wrong = healthy(path, list(origins), float(timeout), serving=sock)
    if not wrong:
        return 0
    rollback = ""
    if previous != "-" and os.readlink(current) != previous:
        with open(record, "w") as f:
            f.write(attempt + "\n")
        switch_back(current, previous, venv, previous_venv)
        subprocess.run(reload, shell=True, stdout=subprocess.DEVNULL)
        back = not healthy(path, list(origins), float(timeout), serving=sock)
        rollback = f"; rolled back to {previous}, which {'serves again' if back else 'does not answer either'}"
    try:
        with open(log, errors="replace") as f:
            recent = f.readlines()[-300:]
    except OSError as error:
        recent = [f"(no log: {error})\n"]
    sys.stderr.write(f"djangohost: app {app} is not healthy through Nginx: {said(wrong)}{rollback}\n"
                     f"--- the end of {log}:\n" + tail(recent, 20))
    return 1


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "accepting":
        print(answer(accepting(args[0])))
        return 0
    if command == "status":
        status(args[0])
        return 0
    if command == "statuses":
        print(json.dumps(statuses(args[0], args[1:])))
        return 0
    if command == "candidate":
        return candidate(*args)
    if command == "gate":
        return gate(*args)
    raise SystemExit(f"health.py: no command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
