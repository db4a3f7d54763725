#!/usr/bin/python3
# managed by djangohost: /usr/local/sbin/djangohost-safe, how root reads and shows what others control
"""How root reads a file that another user (an app's, a build identity) can change, and shows the
text such a user controls on the operator's terminal.

    djangohost-safe read [--max BYTES] [--timeout SECONDS] DIR PATH
        The file DIR/PATH, as it is, when it is a regular file of one link and at most BYTES
        (default 4096), reached from DIR without following any link below it. DIR is root's own
        (an app's home); what PATH crosses may be the app's. Exits 0 with the content, 3 when
        there is no such file, 4 when it is refused (why on stderr).
    djangohost-safe sha256 [--max BYTES] DIR PATH [DIR PATH...]
        "sha256<TAB>digest<TAB>DIR/PATH" for each file `read` would read (default at most 16 MiB),
        nothing for the others: what HostState compares of a file in a tree another user writes.
    djangohost-safe escape [--max BYTES]
        Standard input to standard output with every control character escaped (ESC as \\x1b,
        U+2028 as \\u2028), lines and tabs kept; only its last BYTES (default 65536) are kept.

The kernel's link protections (fs.protected_symlinks, protected_regular, protected_hardlinks) are
not relied on: a link, a FIFO, a device or a file grown huge are refused whatever they are.
The deploy imports this file too (deploys/engine/safe.py): the operator's machine escapes with the
same function.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import stat
import sys

MISSING, REFUSED = 3, 4
# Characters a terminal or Python acts on rather than shows: C0 and C1 controls and DEL (ESC starts
# a terminal's commands), the line and paragraph separators str.splitlines() breaks at, and the
# bidirectional overrides that reorder what is shown.
BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
LINE_SEPARATORS = {0x2028, 0x2029}
NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


class Refused(Exception):
    """A file root does not read: the message says why."""


def is_control(char: str) -> bool:
    """Whether a terminal or Python's str.splitlines() would act on `char` rather than show it."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or code in LINE_SEPARATORS or code in BIDI


def printable(text: str, keep: str = "") -> str:
    """`text` with every control character but those in `keep` escaped as Python writes it."""
    return "".join(char if char in keep or not is_control(char) else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    code = ord(char)
    return NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _open_below(directory: str, path: str) -> int:
    """An O_PATH descriptor of `path` below `directory`, no link followed on the way or at the end."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise Refused(f"{path!r} is not a plain relative path")
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except NotADirectoryError:
        raise Refused(f"{path}: a part of it is a link or not a directory") from None
    finally:
        os.close(fd)


def _check(status: os.stat_result, path: str, limit: int) -> None:
    if stat.S_ISLNK(status.st_mode):
        raise Refused(f"{path} is a link")
    if not stat.S_ISREG(status.st_mode):
        raise Refused(f"{path} is not a regular file")
    if status.st_nlink != 1:
        raise Refused(f"{path} has {status.st_nlink} links")
    if status.st_size > limit:
        raise Refused(f"{path} holds more than {limit} bytes")


def read_below(directory: str, path: str, limit: int = 4096) -> bytes:
    """The content of the regular file `path` below `directory` (see the module's doc): raises
    FileNotFoundError when it does not exist, Refused when it is not read."""
    located = _open_below(directory, path)
    try:
        _check(os.fstat(located), path, limit)
        # Opened for reading only once it is known to be a regular file: opening a FIFO or a
        # device has effects of its own (a FIFO blocks until a writer comes).
        fd = os.open(f"/proc/self/fd/{located}", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    finally:
        os.close(located)
    try:
        opened = os.fstat(fd)
        _check(opened, path, limit)
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Refused(f"{path} holds more than {limit} bytes")
    return data


def digests(pairs: list[str], limit: int) -> list[str]:
    """The sha256 line of each (directory, path) of `pairs` that read_below reads."""
    lines = []
    for directory, path in zip(pairs[::2], pairs[1::2], strict=True):
        try:
            digest = hashlib.sha256(read_below(directory, path, limit)).hexdigest()
        except (Refused, OSError):
            continue
        lines.append(f"sha256\t{digest}\t{directory.rstrip('/')}/{path}")
    return lines


def tail(stream, limit: int) -> tuple[bytes, int]:
    """The last `limit` bytes of a binary stream, read in blocks, and how many came before them."""
    kept, dropped = b"", 0
    while block := stream.read(65536):
        kept += block
        if len(kept) > limit:
            dropped += len(kept) - limit
            kept = kept[-limit:]
    return kept, dropped


def _timeout(seconds: float) -> None:
    def expired(signum, frame):
        raise Refused(f"not read within {seconds:g} s")

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djangohost-safe")
    commands = parser.add_subparsers(dest="command", required=True)
    read = commands.add_parser("read")
    read.add_argument("--max", type=int, default=4096)
    read.add_argument("--timeout", type=float, default=5)
    read.add_argument("directory")
    read.add_argument("path")
    sha256 = commands.add_parser("sha256")
    sha256.add_argument("--max", type=int, default=16 << 20)
    sha256.add_argument("pairs", nargs="+", metavar="DIR PATH")
    escape = commands.add_parser("escape")
    escape.add_argument("--max", type=int, default=65536)
    args = parser.parse_args(argv)
    if args.command == "escape":
        kept, dropped = tail(sys.stdin.buffer, args.max)
        if dropped:
            sys.stdout.write(f"[{dropped} bytes before these left out]\n")
        sys.stdout.write(printable(kept.decode(errors="backslashreplace"), keep="\n\t"))
        return 0
    if args.command == "sha256":
        _timeout(30)
        sys.stdout.write("".join(f"{line}\n" for line in digests(args.pairs, args.max)))
        return 0
    _timeout(args.timeout)
    try:
        sys.stdout.buffer.write(read_below(args.directory, args.path, args.max))
    except FileNotFoundError:
        return MISSING
    except (Refused, OSError) as error:
        sys.stderr.write(printable(f"djangohost-safe: {args.directory}/{args.path}: {error}") + "\n")
        return REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
