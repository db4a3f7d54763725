"""An app's answer through the local Nginx, as a visitor to each of its domains would get it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable

from pyinfra.api import FactBase

# Python run on the host (python3 is there for the virtualenvs): the checks shared by the facts
# and by the health gate after a deploy.
CHECKS = r"""
import http.client, json, socket, ssl, sys, time

def accepting(path):
    # Gunicorn's master accepts for its workers: an accepted connection means the app is served.
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect(path)
        return None
    except OSError as e:
        return e.strerror or str(e)
    finally:
        s.close()

def answer(error):
    # A socket's line as facts.gunicorn reads it.
    return "accepting" if error is None else "refusing " + error

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path):
        super().__init__("localhost", timeout=10)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(self.socket_path)

class LocalHTTPSConnection(http.client.HTTPSConnection):
    # The local Nginx by address, with the domain as SNI; what is checked is the app's answer,
    # not the certificate (which may be a placeholder until ACME issued the real one).
    def __init__(self, domain):
        super().__init__("127.0.0.1", 443, timeout=10, context=ssl._create_unverified_context())
        self.domain = domain

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.domain)

def statuses(path, origins, socket_path=None):
    # Each origin (https://domain, or a bare domain for http) through the local Nginx, or straight
    # to a Gunicorn socket as Nginx would pass it on. 0: no HTTP answer at all.
    result = {}
    for origin in origins:
        scheme, _, domain = origin.rpartition("://")
        # lb-https: behind the load balancer, which ends TLS; plain HTTP, saying it was https.
        forwarded = scheme.removeprefix("lb-")
        if socket_path:
            conn = UnixHTTPConnection(socket_path)
        elif scheme == "https":
            conn = LocalHTTPSConnection(domain)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
        headers = {"Host": domain, "User-Agent": "djangohost-health",
                   "X-Forwarded-Proto": forwarded or "http"}
        try:
            conn.request("GET", path, headers=headers)
            result[origin] = conn.getresponse().status
        except (OSError, http.client.HTTPException):
            result[origin] = 0
        finally:
            conn.close()
    return result
"""


def python(script: str, *args: str) -> str:
    """A shell command running CHECKS followed by `script` with python3, args in sys.argv[1:]."""
    return " ".join(["python3", "-c", shlex.quote(CHECKS + script), *map(shlex.quote, args)])


class AppHealth(FactBase[dict[str, int]]):
    """
    The HTTP status of `path` for each of an app's `domains` (or origins, https://domain for an
    app with TLS), requested through the local Nginx (0: no HTTP answer at all).

    .. code:: python

        {"hello.test": 200, "www.hello.test": 200}
    """

    def command(self, domains: list[str] | str, path: str = "/") -> str:  # type: ignore[override]
        if isinstance(domains, str):  # from the command line: domains=a.test,b.test
            domains = domains.split(",")
        script = "print(json.dumps(statuses(sys.argv[1], sys.argv[2:])))"
        return f"{python(script, path, *domains)} 2>/dev/null || echo '{{}}'"

    def process(self, output: Iterable[str]) -> dict[str, int]:  # type: ignore[override]
        text = "\n".join(output).strip()
        try:
            return {str(k).rpartition("://")[2]: int(v) for k, v in json.loads(text or "{}").items()}
        except (ValueError, AttributeError):
            return {}

    @staticmethod
    def default() -> dict[str, int]:
        return {}
