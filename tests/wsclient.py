"""A client of an ASGI app, run inside a test's container by the app's own Python (its virtualenv
has the `websockets` library, which uvicorn[standard] installs): the traffic stays on the
container's loopback or the test's network, and the WebSocket protocol is spoken by a maintained
implementation rather than one written for the tests.

    python wsclient.py echo ADDRESS URL TEXT [ORIGIN] send TEXT, print the answer (ORIGIN: another Origin)
    python wsclient.py listen ADDRESS URL SECONDS     print "open", then each message, then "closed CODE"
    python wsclient.py stream ADDRESS URL             GET URL, print "ARRIVAL\\tCHUNK" for each event

ADDRESS is where to connect (host:port); URL's host is the app's domain (Host, SNI and Origin);
wss:// and https:// are not verified (self-signed certificates).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
import time
from urllib.parse import urlsplit

UNVERIFIED = ssl._create_unverified_context()


def connected(address: str, url: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=30)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.hostname}"


def websocket(address: str, url: str, other_origin: str | None = None):  # type: ignore[no-untyped-def]
    from websockets.sync.client import connect

    return connect(url, sock=connected(address, url), ssl=UNVERIFIED if url.startswith("wss:") else None,
                   origin=other_origin or origin(url), open_timeout=30)  # type: ignore[arg-type]


def echo(address: str, url: str, text: str, other_origin: str | None = None) -> None:
    with websocket(address, url, other_origin) as ws:
        ws.send(text)
        print(ws.recv(timeout=30))


def listen(address: str, url: str, seconds: str) -> None:
    from websockets.exceptions import ConnectionClosed

    with websocket(address, url) as ws:
        print("open", flush=True)
        deadline = time.monotonic() + float(seconds)
        try:
            while time.monotonic() < deadline:
                try:
                    print(f"message {ws.recv(timeout=1)}", flush=True)
                except TimeoutError:
                    continue
        except ConnectionClosed as closed:
            print(f"closed {closed.rcvd.code if closed.rcvd else 'none'}", flush=True)
            return
    print("timeout", flush=True)


def stream(address: str, url: str) -> None:
    parts = urlsplit(url)
    sock = connected(address, url)
    if parts.scheme == "https":
        sock = UNVERIFIED.wrap_socket(sock, server_hostname=parts.hostname)
    conn = http.client.HTTPConnection(parts.hostname or "")
    conn.sock = sock
    conn.request("GET", parts.path or "/", headers={"Host": parts.hostname or ""})
    response = conn.getresponse()
    pending = b""
    while chunk := response.read1(65536):
        pending += chunk
        while b"\n\n" in pending:
            event, pending = pending.split(b"\n\n", 1)
            print(f"{time.time():.3f}\t{event.decode()}", flush=True)


if __name__ == "__main__":
    {"echo": echo, "listen": listen, "stream": stream}[sys.argv[1]](*sys.argv[2:])
