"""djangohost-safe, run for real: how root reads a file another user controls (never through a
link, never a FIFO, never more than it asked for) and how text another user controls is shown."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import threading

import pytest

from deploys.engine import safe

TOOL = [sys.executable, str(safe.SOURCE)]


def read(directory, path, limit=64) -> subprocess.CompletedProcess:
    return subprocess.run([*TOOL, "read", "--max", str(limit), "--timeout", "5", str(directory), path],
                          capture_output=True, timeout=30)


@pytest.fixture
def home(tmp_path):
    """An app's home: root's, with a run/ directory the app may fill with anything."""
    (tmp_path / "run").mkdir()
    (tmp_path / "secret").write_text("root's secret\n")
    return tmp_path


def test_a_regular_file_is_read_as_it_is(home):
    (home / "run" / "marker").write_bytes(b"1234\n")
    done = read(home, "run/marker")
    assert (done.returncode, done.stdout) == (0, b"1234\n")


def test_a_missing_file_is_said_missing(home):
    assert read(home, "run/marker").returncode == 3
    assert read(home, "nothing/marker").returncode == 3


@pytest.mark.parametrize("target", ["../secret", "/etc/hostname", "/dev/zero"])
def test_a_link_is_never_followed(home, target):
    (home / "run" / "marker").symlink_to(target)
    done = read(home, "run/marker")
    assert done.returncode == 4 and done.stdout == b"" and b"is a link" in done.stderr


def test_a_linked_directory_on_the_way_is_never_followed(home):
    (home / "elsewhere").mkdir()
    (home / "elsewhere" / "marker").write_text("not the app's\n")
    (home / "run" / "sub").symlink_to(home / "elsewhere")
    done = read(home, "run/sub/marker")
    assert done.returncode == 4 and done.stdout == b""


def test_a_hard_link_to_another_file_is_refused(home):
    os.link(home / "secret", home / "run" / "marker")
    done = read(home, "run/marker")
    assert done.returncode == 4 and b"2 links" in done.stderr and done.stdout == b""


def test_a_fifo_is_refused_at_once_without_waiting_for_a_writer(home):
    os.mkfifo(home / "run" / "marker")
    done = read(home, "run/marker")  # a plain open would block here until the timeout of the test
    assert done.returncode == 4 and b"not a regular file" in done.stderr


def test_a_fifo_with_a_writer_is_not_read_either(home):
    fifo = home / "run" / "marker"
    os.mkfifo(fifo)
    # A writer that never stops: what an app would leave running.
    def write() -> None:
        with contextlib.suppress(OSError), open(fifo, "wb") as out:
            out.write(b"x" * (1 << 20))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    done = read(home, "run/marker")
    assert done.returncode == 4 and done.stdout == b""
    # Let the writer go.
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.close(fd)


def test_a_file_larger_than_asked_is_refused(home):
    (home / "run" / "marker").write_bytes(b"x" * 65)
    done = read(home, "run/marker", limit=64)
    assert done.returncode == 4 and b"more than 64 bytes" in done.stderr and done.stdout == b""
    # Sparse: huge as it says, nothing on disk.
    with open(home / "run" / "marker", "wb") as file:
        file.truncate(1 << 40)
    assert read(home, "run/marker").returncode == 4


def test_paths_that_climb_out_are_refused(home):
    for path in ("../secret", "run/../secret", "/etc/hostname", "", "run//marker"):
        assert read(home, path).returncode == 4, path


def test_what_it_says_about_a_path_is_escaped(home):
    name = "m\x1b]0;pwned\x07"
    (home / "run" / name).symlink_to("/etc/hostname")
    done = read(home, f"run/{name}")
    assert done.returncode == 4 and b"\x1b" not in done.stderr and b"\\x1b]0;pwned\\x07" in done.stderr


@pytest.mark.parametrize(("text", "shown"), [
    ("plain text, accents é and 日本", "plain text, accents é and 日本"),
    ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
    ("cr\roverwrites", "cr\\roverwrites"),
    ("c1 \x9b31m csi", "c1 \\x9b31m csi"),
    ("del\x7f", "del\\x7f"),
    ("line\u2028sep\u2029par\x85nel", "line\\u2028sep\\u2029par\\x85nel"),
    ("bidi \u202egnp.exe", "bidi \\u202egnp.exe"),
    ("tab\tnew\nline", "tab\\tnew\\nline"),
])
def test_printable_escapes_what_a_terminal_acts_on(text, shown):
    assert safe.printable(text) == shown


def test_lines_keep_their_breaks_and_tabs():
    assert safe.lines("a\tb\nc\x1b[31m\n") == "a\tb\nc\\x1b[31m\n"


def test_escape_filters_a_stream_and_keeps_its_end():
    done = subprocess.run([*TOOL, "escape", "--max", "16"], input=b"x" * 100 + b"\x1b[31mred\xff\n",
                          capture_output=True, check=True)
    assert done.stdout == b"[94 bytes before these left out]\nxxxxxx\\x1b[31mred\\xff\n"


def test_sha256_of_the_files_it_would_read_only(home):
    (home / "run" / "key").write_bytes(b"secret key\n")
    os.mkfifo(home / "run" / "fifo")
    (home / "run" / "link").symlink_to(home / "secret")
    done = subprocess.run([*TOOL, "sha256", str(home), "run/key", str(home), "run/fifo", str(home), "run/link",
                           str(home), "run/missing"], capture_output=True, text=True, check=True, timeout=30)
    digest = hashlib.sha256(b"secret key\n").hexdigest()
    assert done.stdout == f"sha256\t{digest}\t{home}/run/key\n"
