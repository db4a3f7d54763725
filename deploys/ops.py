"""Operations that compare what a deploy wants with the HostState fact read once per host.

pyinfra's own files.* operations read two or three facts each (a round trip apiece) to decide
whether anything changed; these read none: the deploy passes them the state it gathered in one
fact, so an up-to-date host costs one round trip however many files an app has. They yield
commands only when something differs, and with --diff they print a unified diff of every file they
would write, including files whose directory does not exist yet, with secret values masked.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from io import BytesIO, StringIO

from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import FileContents
from pyinfra.operations import server
from pyinfra.operations.util.files import generate_color_diff

from deploys import paths
from facts.state import EnvFileState, PathState, State

MASK = "********"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _show_diff(path: str, exists: bool, content: str, secrets: Iterable[str]) -> None:
    # Diffs are shown once, while pyinfra checks for changes, not again as commands execute.
    if not state.config.DIFF or state.is_executing:
        return
    current: list[str] = []
    if exists:
        host.log(f"Will modify {path}", logger.info)
        current = [line + "\n" for line in host.get_fact(FileContents, path=path) or []]
    else:
        host.log(f"Will create {path}", logger.info)
    secrets = list(secrets)
    current = [mask(line, secrets) for line in current]
    desired = mask(content, secrets).splitlines(keepends=True)
    for line in generate_color_diff(current, desired):
        logger.info("  %s", line)
    logger.info("")


def _owner_mode(path: str, owner: str, group: str, mode: str) -> str:
    quoted = shlex.quote(path)
    return f"chown {owner}:{group} {quoted} && chmod {mode} {quoted}"


@operation()
def file(
    path: str,
    content: str,
    owner: str,
    group: str,
    mode: str,
    current: PathState | None,
    secrets: Iterable[str] = (),
):
    """
    Write a file with the given content, owner, group and (octal string) mode.

    + path: where the file goes
    + content: its text
    + current: the file's PathState from HostState, or None when it does not exist
    + secrets: values to mask in --diff output
    """
    if current and current.kind == "file" and current.sha256 == sha256(content):
        if (current.owner, current.group, current.mode) == (owner, group, mode):
            host.noop(f"{path} is up to date")
            return
        yield _owner_mode(path, owner, group, mode)
        return

    _show_diff(path, bool(current), content, secrets)
    temp = f"{path}.djangohost-new"
    yield FileUploadCommand(StringIO(content), temp, remote_temp_filename=temp)
    # Owner and mode are set before the file takes its name, so it is never readable by others.
    yield f"{_owner_mode(temp, owner, group, mode)} && mv -f {shlex.quote(temp)} {shlex.quote(path)}"


@operation()
def directory(path: str, owner: str, group: str, mode: str, current: PathState | None):
    """
    Ensure a directory with the given owner, group and (octal string) mode.

    + current: the directory's PathState from HostState, or None when it does not exist
    """
    if current and current.kind == "dir":
        if (current.owner, current.group, current.mode) == (owner, group, mode):
            host.noop(f"directory {path} is up to date")
            return
        yield _owner_mode(path, owner, group, mode)
        return
    yield f"mkdir -p {shlex.quote(path)} && {_owner_mode(path, owner, group, mode)}"


@operation()
def link(path: str, target: str, current: PathState | None):
    """
    Point a symbolic link at target, replacing what was there atomically.

    + current: the link's PathState from HostState, or None when it does not exist
    """
    if current and current.kind == "link" and current.target == target:
        host.noop(f"link {path} -> {target} is up to date")
        return
    temp = shlex.quote(f"{path}.djangohost-new")
    # rename(2) over the old link: readers see either the old target or the new one, never none.
    yield f"ln -sfn {shlex.quote(target)} {temp} && mv -T {temp} {shlex.quote(path)}"


@operation()
def absent(path: str, current: PathState | None):
    """
    Remove a file or link.

    + current: the path's PathState from HostState, or None when nothing is there
    """
    if current is None:
        host.noop(f"{path} does not exist")
        return
    yield f"rm -f {shlex.quote(path)}"


@operation()
def command(command: str, needed: bool, reason: str):
    """
    Run a shell command when the deploy found it needed.

    + needed: the comparison of HostState with the wish, made by the caller
    + reason: said instead when nothing is needed
    """
    if not needed:
        host.noop(reason)
        return
    yield command


@operation()
def unpack(path: str, archive: bytes, needed: bool):
    """
    Unpack a gzipped tar into a new directory `path`, owned by root, appearing whole or not at all.

    + needed: False when `path` is already the live release
    """
    if not needed:
        host.noop(f"{path} is already deployed")
        return
    upload = f"{path}.tar.gz"
    building = shlex.quote(f"{path}.djangohost-new")
    yield FileUploadCommand(BytesIO(archive), upload, remote_temp_filename=upload)
    yield (
        f"rm -rf {building} && mkdir -p {building} && "
        f"tar -xzf {shlex.quote(upload)} -C {building} --no-same-owner && "
        f"rm -f {shlex.quote(upload)} && rm -rf {shlex.quote(path)} && mv {building} {shlex.quote(path)}"
    )


# A SECRET_KEY made on the host, never seen by the machine running pyinfra.
GENERATE_SECRET_KEY = "head -c 48 /dev/urandom | base64 | tr -d '\\n/+='"


@operation()
def env_file(
    path: str,
    content: str,
    group: str,
    current: EnvFileState | None,
    secrets: Iterable[str] = (),
):
    """
    Write an app's environment file (root:group, 0640). Unless `content` sets SECRET_KEY, the file
    keeps the SECRET_KEY line it has, or gets one generated on the host the first time.

    + content: KEY=value lines, SECRET_KEY among them only when the inventory gives it
    + current: the file's EnvFileState from HostState, or None when it does not exist
    + secrets: values to mask in --diff output
    """
    given_key = any(line.startswith("SECRET_KEY=") for line in content.splitlines())
    if current is not None:
        if given_key and current.sha256 == sha256(content):
            host.noop(f"{path} is up to date")
            return
        if not given_key and current.has_secret_key and current.public_sha256 == sha256(content):
            host.noop(f"{path} is up to date")
            return

    _show_diff(path, current is not None, content, secrets)
    quoted = shlex.quote(path)
    temp = f"{path}.djangohost-new"
    quoted_temp = shlex.quote(temp)
    yield FileUploadCommand(StringIO(content), temp, remote_temp_filename=temp)
    keep_key = (
        "" if given_key else
        f" && {{ grep '^SECRET_KEY=' {quoted} 2>/dev/null || echo \"SECRET_KEY=$({GENERATE_SECRET_KEY})\"; }}"
        f" >>{quoted_temp}"
    )
    yield f"chown root:{group} {quoted_temp} && chmod 640 {quoted_temp}{keep_key} && mv -f {quoted_temp} {quoted}"


@dataclass(frozen=True)
class Stamp:
    """What a reaction (a reload, a restart) last applied on the host: a digest of its inputs.

    A reaction fires when one of its input operations changed something, and also when its stamp
    is stale, so a reaction lost to a failed run is done by the next run.
    """

    path: str
    digest: str
    stale: bool

    @classmethod
    def of(cls, state: State, name: str, *inputs: str) -> Stamp:
        path = f"{paths.STAMPS}/{name}"
        digest = sha256("\0".join(inputs))
        current = state.paths.get(path)
        return cls(path, digest, not current or current.sha256 != sha256(digest + "\n"))

    @property
    def write(self) -> str:
        return f"echo {self.digest} > {self.path}"


def react(name: str, command: str, stamps: Iterable[Stamp], changes: Iterable[OperationMeta],
          unless: Callable[[], bool] = lambda: False) -> OperationMeta:
    """Run `command` when an input operation changed or the first stamp is stale, then record
    every stamp as applied. `unless` names a stronger reaction that makes this one redundant."""
    stamps, changes = list(stamps), list(changes)
    return server.shell(
        name=name,
        # A subshell, so a multi-line command's `exit 0` still leads to the stamps.
        commands=[" && ".join([f"(\n{command}\n)", *(stamp.write for stamp in stamps)])],
        _if=lambda: not unless() and (stamps[0].stale or any(op.did_change() for op in changes)),
    )
