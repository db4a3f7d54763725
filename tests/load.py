"""A bounded request loop against one app through a container's published Nginx port (loopback
only): what a visitor sees while djangohost changes things underneath."""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Load:
    port: int
    domain: str
    markers: tuple[str, ...] = ()  # page texts to count, e.g. the old and the new message
    https: bool = False  # the port is Nginx's 443: TLS, with the domain as SNI (not verified)
    max_requests: int = 50_000
    max_seconds: float = 600
    statuses: Counter = field(default_factory=Counter)
    seen: Counter = field(default_factory=Counter)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    order: list[str] = field(default_factory=list)  # markers in the order first seen
    # Requests sent again on a new connection because the kept-alive one they were sent on closed
    # before any answer: Nginx closes kept-alive connections when it reloads, and a request crossing
    # that close is retried by browsers (and by any client, RFC 9112 9.3.1), never shown as failed.
    retried: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and sum(self.statuses.values()) < self.max_requests:
            if time.monotonic() > deadline:
                break
            start = time.monotonic()
            try:
                try:
                    conn, response = self._get(conn)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if conn is None:  # a new connection: no close crossed it
                        raise
                    self.retried += 1
                    conn, response = self._get(None)
                body = response.read().decode(errors="replace")
                self.statuses[response.status] += 1
                for marker in self.markers:
                    if marker in body:
                        self.seen[marker] += 1
                        if marker not in self.order:
                            self.order.append(marker)
            except (OSError, http.client.HTTPException) as error:
                self.statuses[type(error).__name__] += 1
                conn = None
            self.latencies.append((start, time.monotonic() - start))

    def _get(self, conn: http.client.HTTPConnection | None
             ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = conn or (_HTTPSConnection(self.domain, self.port) if self.https
                        else http.client.HTTPConnection("127.0.0.1", self.port, timeout=10))
        conn.request("GET", "/", headers={"Host": self.domain})
        return conn, conn.getresponse()

    def __enter__(self) -> Load:
        self._thread.start()
        while not self.statuses:  # serving before the change starts
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)  # a little after the change too
        self._stop.set()
        self._thread.join()

    @property
    def failed(self) -> dict:
        return {status: n for status, n in self.statuses.items() if not (isinstance(status, int) and status < 300)}

    @property
    def served(self) -> int:
        return sum(self.statuses.values())


class _HTTPSConnection(http.client.HTTPSConnection):
    """127.0.0.1's published port, the domain as SNI; the certificate is not what is tested."""

    def __init__(self, domain: str, port: int) -> None:
        super().__init__("127.0.0.1", port, timeout=10, context=ssl._create_unverified_context())
        self.domain = domain

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.domain)  # type: ignore[attr-defined]
