"""What the day-two commands run on a host from inside an operation (python.call), with the
run's own connection settings (SSH, sudo), and how they show what comes back: escaped. Each takes
pyinfra's state and host first, so that pyinfra fails the host when it returns False (an exception
would print a traceback)."""

from __future__ import annotations

import heapq
import re
import shlex
import signal

import click
from gevent import subprocess
from pyinfra.api import Host, State, StringCommand

from deploys.daytwo import shell
from deploys.engine import ops, safe
from facts.logs import LogLine


def shown(found: dict[str, list[LogLine]], by_server: bool) -> list[str]:
    """Every host's lines merged by time (each host's own order kept), labelled by log, and by
    server when there are several."""
    merged = list(heapq.merge(*([(line, server) for line in lines] for server, lines in found.items()),
                              key=lambda pair: pair[0].time))
    width = max((len(line.log) for line, _ in merged), default=0)
    return [f"{f'{server}  ' if by_server else ''}{line.log:<{width}}  {safe.printable(line.text)}"
            for line, server in merged]


def stream(state: State, host: Host, words: list[str]) -> bool:
    """Run `words` as root on the host through a connection of their own (shell.command_line: ssh
    -tt, docker exec -i), printing each line as it comes, until it ends or the run is interrupted
    (Ctrl-C reaches ssh too; the program on the host then goes with its terminal or its input).
    pyinfra's own connection would keep the program running after the run went."""
    line = shell.command_line(host, words, interactive=False)
    process = subprocess.Popen(line, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    received = 0
    for raw in process.stdout:
        received += 1
        # The program on the host escaped every line already; the terminal it ran in adds \r.
        text = raw.decode(errors="backslashreplace").rstrip("\r\n")
        click.echo(f"{host.print_prefix}{safe.printable(text)}")
    status = process.wait()
    # Ended, or interrupted: Ctrl-C ends ssh with 255 too, which says why when it could not connect.
    if status not in (0, 130, -signal.SIGINT, -signal.SIGTERM) and not (status == 255 and received):
        failed(host, f"following the logs failed: exit status {status}")
        return False
    return True


def failed(host: Host, message: str) -> None:
    host.log_styled(safe.printable(message), fg="red")


# The command's exit status, written after it on standard error (pyinfra keeps only whether it passed).
MARK = "djangohost-manage-exit"


def wrapped(words: list[str]) -> str:
    """Shell: the quoted words, then their exit status on standard error, and that status again."""
    return f"{shlex.join(words)} </dev/null; s=$?; printf '\\n{MARK} %s\\n' \"$s\" >&2; exit \"$s\""


def exit_status(lines: list[tuple[str, str]]) -> tuple[int | None, list[str]]:
    """The status the wrapper wrote last on standard error, and the output's lines (stream, text)
    without it and the line break it began with."""
    for index in range(len(lines) - 1, -1, -1):
        if lines[index][0] == "stderr" and (match := re.fullmatch(rf"{MARK} (\d+)", lines[index][1])):
            rest = lines[:index] + lines[index + 1:]
            blank = [at for at, (stream, _) in enumerate(rest[:index]) if stream == "stderr"][-1:]
            if blank and not rest[blank[0]][1]:
                del rest[blank[0]]
            return int(match.group(1)), [text for _, text in rest]
    return None, [text for _, text in lines]


def manage(state: State, host: Host, label: str, words: list[str]) -> bool:
    """Run the command; print what it wrote, escaped, and its status; False when it failed."""
    succeeded, output = host.run_shell_command(StringCommand(wrapped(words)), **ops.connection(state, host))
    status, lines = exit_status([(line.buffer_name, line.line) for line in output])
    for line in lines:
        click.echo(f"{host.name}: {safe.printable(line, keep=chr(9))}")
    said = f"exit status {status}" if status is not None else "no exit status (interrupted?)"
    if not succeeded or status != 0:
        failed(host, f"{label} FAILED: {said}")
        return False
    click.echo(f"{host.name}: {label}: {said}")
    return True
