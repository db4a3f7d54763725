"""Operations that compare what a deploy wants with the HostState fact read once per host.

pyinfra's own files.* operations read two or three facts each (a round trip apiece) to decide
whether anything changed; these read none: the deploy passes them the state it gathered in one
fact, so an up-to-date host costs one round trip however many files an app has. They yield
commands only when something differs, and with --diff they print a unified diff of every file they
would write, including files whose directory does not exist yet, with secret values masked.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from io import BytesIO, StringIO
from typing import Any, TypeVar, cast

from pyinfra import host, logger, state
from pyinfra.api import FileDownloadCommand, FileUploadCommand, FunctionCommand, StringCommand, operation
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import FileContents
from pyinfra.operations.util.files import generate_color_diff

from deploys.engine import lock, safe
from deploys.model.paths import BACKGROUND_TOOL, UPLOADS
from facts.git import as_user
from facts.state import MASK, EnvFileState, MaskedEnvFile, PathState, State


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def mask_env(content: str, keys: Iterable[str]) -> str:
    """Environment file lines with the values of `keys` masked, as MaskedEnvFile does on the host:
    lines as the shell and sed read them, ended by \n only (str.splitlines() would also end one at
    \v, \x1c or U+2028, and show the rest of a secret holding one; schema refuses those anyway)."""
    keys = {"SECRET_KEY", *keys}
    return "\n".join(f"{line.split('=', 1)[0]}={MASK}" if line.split("=", 1)[0] in keys else line
                     for line in content.split("\n"))


def _diffing() -> bool:
    # Diffs are shown once, while pyinfra checks for changes, not again as commands execute.
    return state.config.DIFF and not state.is_executing


def _show_diff(path: str, current: list[str] | None, desired: str) -> None:
    """Log a unified diff from the current lines (None: no file yet) to the desired text, escaped:
    a file's text may be an app's or a committer's (its dependency files)."""
    host.log(f"Will {'create' if current is None else 'modify'} {safe.printable(path)}", logger.info)
    current = [safe.printable(line) + "\n" for line in current or []]
    wanted = desired.split("\n")
    if desired.endswith("\n"):
        wanted.pop()
    desired_lines = [safe.printable(line) + "\n" for line in wanted]
    for line in generate_color_diff(current, desired_lines):
        logger.info("  %s", line)
    logger.info("")


def diff(label: str, content: str, current: str | None) -> None:
    """With --diff, while pyinfra plans: a unified diff of `label` from the host's file at `current`
    (None: no file) to `content`, when they differ (a file the deploy does not write itself, such as
    a release's requirements)."""
    if not _diffing():
        return
    lines = host.get_fact(FileContents, path=current) if current else None
    if lines is None or lines != content.splitlines():
        _show_diff(label, lines, content)


def _owner_mode(path: str, owner: str, group: str, mode: str) -> str:
    quoted = shlex.quote(path)
    return f"chown {owner}:{group} {quoted} && chmod {mode} {quoted}"


def _upload(data: StringIO | BytesIO, dest: str) -> tuple[FileUploadCommand, str]:
    """Ship `data` to the host, for `dest`; returns the upload and where it put the data.

    The upload runs as the user pyinfra logs in as, which under `_sudo` cannot write where the
    file belongs: it goes to that user's private directory (paths.UPLOADS, 0700) instead, and a
    command of the caller's takes it from there (see _place).
    """
    staged = _staged(dest)
    return FileUploadCommand(data, staged, remote_temp_filename=staged, _sudo=False), staged


def _staged(path: str) -> str:
    """Where a file for or from `path` waits in the login user's private directory."""
    return f"{UPLOADS}/{hashlib.sha1(path.encode()).hexdigest()[:16]}"


def _place(staged: str, dest: str) -> str:
    """Shell: move an upload to `dest` as a new file only root can read yet."""
    quoted = shlex.quote(dest)
    return f"rm -f {quoted} && (umask 077 && cp {staged} {quoted}) && rm -f {staged}"


class Unchanged:
    """Stands for an operation with nothing to do, which is not made at all: pyinfra spends 1 to 2 ms
    making and running each operation, and a no-op run of 30 apps would make 900 of them. It answers
    as an operation that ran and changed nothing."""

    will_change = False

    def did_change(self) -> bool:
        return False

    def did_error(self) -> bool:
        return False

    def is_complete(self) -> bool:
        return True


UNCHANGED: Any = Unchanged()
Operation = TypeVar("Operation", bound=Callable[..., OperationMeta])


def unless(up_to_date: Callable[..., bool]) -> Callable[[Operation], Operation]:
    """Return UNCHANGED instead of making the operation when `up_to_date(**its arguments)`, decided
    from HostState while pyinfra plans."""
    def decorate(op: Operation) -> Operation:
        @functools.wraps(op)
        def call(*args: Any, **kwargs: Any) -> OperationMeta:
            arguments = {key: value for key, value in kwargs.items() if key != "name" and not key.startswith("_")}
            return UNCHANGED if not args and up_to_date(**arguments) else op(*args, **kwargs)
        return call  # type: ignore[return-value]
    return decorate


def _same_content(content: str, current: PathState | None) -> bool:
    return current is not None and current.kind == "file" and current.sha256 == sha256(content)


def _file_up_to_date(path: str, content: str, owner: str, group: str, mode: str, current: PathState | None,
                     **_: Any) -> bool:
    return (current is not None and _same_content(content, current)
            and (current.owner, current.group, current.mode) == (owner, group, mode))


@unless(_file_up_to_date)
@operation()
def file(
    path: str,
    content: str,
    owner: str,
    group: str,
    mode: str,
    current: PathState | None,
    secret: bool = False,
):
    """
    Write a file with the given content, owner, group and (octal string) mode.

    + path: where the file goes
    + content: its text (see env_file for files that mix secrets with other values)
    + current: the file's PathState from HostState, or None when it does not exist
    + secret: never show the content, in diffs either
    """
    if _same_content(content, current):
        yield _owner_mode(path, owner, group, mode)
        return

    if _diffing() and secret:
        host.log(f"Will {'modify' if current else 'create'} {path} (secret: not shown)", logger.info)
    elif _diffing():
        _show_diff(path, host.get_fact(FileContents, path=path) if current else None, content)
    temp = f"{path}.djangohost-new"
    upload, staged = _upload(StringIO(content), temp)
    yield upload
    # Owner and mode are set before the file takes its name, so it is never readable by others.
    yield (f"{_place(staged, temp)} && {_owner_mode(temp, owner, group, mode)} && "
           f"mv -f {shlex.quote(temp)} {shlex.quote(path)}")


@unless(lambda user, path, content, mode, current, **_: _file_up_to_date(path, content, user, user, mode, current))
@operation()
def own_file(user: str, home: str, path: str, content: str, mode: str, current: PathState | None):
    """
    Write a secret file in a tree `user` owns, as that user, from root's upload: root writes
    nothing where the user could have planted a link. Never shown, in diffs either.

    + home: the user's home (HOME of the command)
    + current: the file's PathState from HostState, or None when it does not exist
    """
    if _diffing():
        host.log(f"Will {'modify' if current else 'create'} {path} (secret: not shown)", logger.info)
    upload, staged = _upload(StringIO(content), path)
    yield upload
    write = ('umask 077 && rm -f "$1.djangohost-new" && cat >"$1.djangohost-new" && chmod "$2" "$1.djangohost-new" && '
             'mv -f "$1.djangohost-new" "$1"')
    written = as_user(user, home, f"sh -c {shlex.quote(write)} sh {shlex.quote(path)} {mode}")
    yield f"{written} <{staged} && rm -f {staged}"


@unless(lambda user, mode, current, **_: _directory_up_to_date("", user, user, mode, current))
@operation()
def own_directory(user: str, home: str, path: str, mode: str, current: PathState | None):
    """
    A directory in a tree `user` owns, made (again, when something else is there) by that user.

    + current: its PathState from HostState, or None when nothing is there
    """
    make = '[ -d "$1" ] && [ ! -L "$1" ] || { rm -rf "$1" && mkdir "$1"; }; chmod "$2" "$1"'
    yield as_user(user, home, f"sh -c {shlex.quote(make)} sh {shlex.quote(path)} {mode}")


@dataclass(frozen=True)
class File:
    """A file ops.files writes: its path, text, owner, group and (octal string) mode."""

    path: str
    content: str
    owner: str = "root"
    group: str = "root"
    mode: str = "644"

    def up_to_date(self, current: Mapping[str, PathState]) -> bool:
        return _file_up_to_date(self.path, self.content, self.owner, self.group, self.mode, current.get(self.path))


class Written:
    """One file of an ops.files operation, as a reaction sees it: changed when the operation
    wrote it (decided while pyinfra plans, from HostState), not when it wrote another."""

    def __init__(self, op: OperationMeta, stale: bool) -> None:
        self.op, self.stale = op, stale

    @property
    def will_change(self) -> bool:
        return self.stale and self.op.will_change

    def did_change(self) -> bool:
        return self.stale and self.op.did_change()

    def did_error(self) -> bool:
        return self.op.did_error()

    def is_complete(self) -> bool:
        return self.op.is_complete()


def _archive(contents: Iterable[str]) -> bytes:
    """A tar of the texts, named 0, 1, 2... in their order."""
    data = BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for index, content in enumerate(contents):
            encoded = content.encode()
            member = tarfile.TarInfo(str(index))
            member.size, member.mode = len(encoded), 0o600
            tar.addfile(member, BytesIO(encoded))
    return data.getvalue()


@unless(lambda files, current, **_: all(file.up_to_date(current) for file in files))
@operation()
def files(files: list[File], current: Mapping[str, PathState]):
    """
    Write several files as ops.file writes one (those that differ only) with one upload and one
    command however many they are. See written() for what reacts to one of them.

    + current: HostState's paths
    """
    stale = [file for file in files if not file.up_to_date(current)]
    new = [file for file in stale if not _same_content(file.content, current.get(file.path))]
    for file in new if _diffing() else ():
        _show_diff(file.path, host.get_fact(FileContents, path=file.path) if file.path in current else None,
                   file.content)
    commands = [_owner_mode(file.path, file.owner, file.group, file.mode) for file in stale if file not in new]
    if new:
        upload, staged = _upload(BytesIO(_archive(file.content for file in new)), ":".join(f.path for f in new))
        yield upload
        unpacked = f"{staged}.d"
        commands.append(f"rm -rf {unpacked} && (umask 077 && mkdir {unpacked} && "
                        f"tar -xf {staged} -C {unpacked} --no-same-owner) && rm -f {staged}")
        for index, file in enumerate(new):
            temp = f"{file.path}.djangohost-new"
            commands.append(f"{_place(f'{unpacked}/{index}', temp)} && "
                            f"{_owner_mode(temp, file.owner, file.group, file.mode)} && "
                            f"mv -f {shlex.quote(temp)} {shlex.quote(file.path)}")
        commands.append(f"rmdir {unpacked}")
    yield " && ".join(commands)


def written(name: str, batch: list[File], current: Mapping[str, PathState]) -> list[OperationMeta]:
    """Write the `batch` of files with one ops.files operation named `name`; returns what stands
    for each file in reactions (see Written), in their order."""
    op = files(name=name, files=batch, current=current)
    return [cast(OperationMeta, Written(op, not file.up_to_date(current))) for file in batch]


def _directory_up_to_date(path: str, owner: str, group: str, mode: str, current: PathState | None) -> bool:
    return (current is not None and current.kind == "dir"
            and (current.owner, current.group, current.mode) == (owner, group, mode))


def _ensure_directory(path: str, owner: str, group: str, mode: str, current: PathState | None) -> str:
    if current and current.kind == "dir":
        return _owner_mode(path, owner, group, mode)
    return f"mkdir -p {shlex.quote(path)} && {_owner_mode(path, owner, group, mode)}"


@unless(lambda path, owner, group, mode, current, **_: _directory_up_to_date(path, owner, group, mode, current))
@operation()
def directory(path: str, owner: str, group: str, mode: str, current: PathState | None):
    """
    Ensure a directory with the given owner, group and (octal string) mode.

    + current: the directory's PathState from HostState, or None when it does not exist
    """
    yield _ensure_directory(path, owner, group, mode, current)


#: A directory as (path, owner, group, octal mode).
Directory = tuple[str, str, str, str]


def _directories_up_to_date(directories: list[Directory], current: Mapping[str, PathState], **_: Any) -> bool:
    return all(_directory_up_to_date(path, owner, group, mode, current.get(path))
               for path, owner, group, mode in directories)


@unless(_directories_up_to_date)
@operation()
def directories(directories: list[Directory], current: Mapping[str, PathState]):
    """
    Ensure several directories in one command (one round trip), in their order: a parent before
    what it holds.

    + directories: (path, owner, group, octal mode) of each
    + current: HostState's paths
    """
    yield " && ".join(_ensure_directory(path, owner, group, mode, current.get(path))
                      for path, owner, group, mode in directories
                      if not _directory_up_to_date(path, owner, group, mode, current.get(path)))


@unless(lambda target, current, **_: current is not None and current.kind == "link" and current.target == target)
@operation()
def link(path: str, target: str, current: PathState | None):
    """
    Point a symbolic link at target, replacing what was there atomically.

    + current: the link's PathState from HostState, or None when it does not exist
    """
    yield relink(path, target)


def relink(path: str, target: str) -> str:
    """Shell: point the link `path` at `target`. rename(2) over the old link: readers see either
    the old target or the new one, never none."""
    temp = shlex.quote(f"{path}.djangohost-new")
    return f"ln -sfn {shlex.quote(target)} {temp} && mv -T {temp} {shlex.quote(path)}"


def link_state(target: str) -> PathState:
    """The PathState of a link known to point at `target`."""
    return PathState("link", target=target)


@unless(lambda current, **_: current is None)
@operation()
def absent(path: str, current: PathState | None):
    """
    Remove a file or link.

    + current: the path's PathState from HostState, or None when nothing is there
    """
    yield f"rm -f {shlex.quote(path)}"


@unless(lambda needed, **_: needed is False)
@operation()
def command(command: str, needed: bool | Callable[[], bool], reason: str):
    """
    Run a shell command when the deploy found it needed.

    + needed: the comparison of HostState with the wish, made by the caller (or a function
      making it when the operation runs; then the operation is made either way)
    + reason: said instead when a function finds nothing needed
    """
    if not (needed() if callable(needed) else needed):
        host.noop(reason)
        return
    yield command


@operation()
def rendezvous():
    """
    Nothing, at the same line of the deploy on every host: pyinfra orders the operations of one
    call on several hosts as one step, so no host goes past it before every host has run what
    comes before it.
    """
    host.noop("every host got here")
    yield from ()


@unless(lambda needed, **_: not needed)
@operation()
def relay(path: str, source: str, source_path: str, owner: str, group: str, mode: str, needed: bool):
    """
    Copy a file of another host of the inventory as the operation runs, not as pyinfra plans: a
    file that host makes in this run (a password) arrives, and its content is in no plan, diff or
    output.

    + source: the inventory name of the host that has the file, at source_path
    + needed: False when the two copies are known to be the same
    """
    content = StringIO()
    yield FunctionCommand(_fetch, (source, source_path, content), {})
    temp = f"{path}.djangohost-new"
    upload, staged = _upload(content, temp)
    yield upload
    yield (f"{_place(staged, temp)} && {_owner_mode(temp, owner, group, mode)} && "
           f"mv -f {shlex.quote(temp)} {shlex.quote(path)}")


def _fetch(state: Any, host: Any, source: str, path: str, content: StringIO) -> bool:
    """Read `path` on the host `source` into `content`."""
    ok, output = _run_on(state, source, StringCommand("cat", shlex.quote(path)))
    if not ok:
        host.log(f"{path} could not be read on {source}", logger.error)
        return False
    content.write("".join(f"{line}\n" for line in output.stdout_lines))
    content.seek(0)
    return True


@operation()
def elsewhere(on: str, command: str):
    """
    Run a shell command on another host of the inventory (`on`) as this operation runs: this
    host's step there, such as an app server leaving the load balancer.
    """
    yield FunctionCommand(_elsewhere, (on, command), {})


def _elsewhere(state: Any, host: Any, on: str, command: str) -> bool:
    ok, output = _run_on(state, on, StringCommand(command))
    if not ok:
        host.log(f"on {on}: {command} failed: {' '.join(output.stderr_lines)[-500:]}", logger.error)
    return ok


def _run_on(state: Any, name: str, command: StringCommand, stdin: str | None = None) -> tuple[bool, Any]:
    """Run `command` on the inventory's host `name` as its own operations would (its sudo), its
    output unprinted."""
    other = state.inventory.get_host(name)
    return other.run_shell_command(command, print_output=False, print_input=False,
                                   **{**connection(state, other), **({"_stdin": stdin} if stdin is not None else {})})


def connection(state: Any, target: Any) -> dict[str, Any]:
    """The run's connection arguments for `target` (its _sudo...), as its facts get them."""
    arguments, _ = pop_global_arguments(state, target, {})
    return {key: value for key, value in arguments.items() if key in CONNECTOR_ARGUMENT_KEYS}


def fed(command: list[str], stdin: str) -> FunctionCommand:
    """A command of an operation that gets `stdin` as its input, made as the operation runs: text
    of any size or content (an app's output) that no command line carries or shows (`ps`)."""
    return FunctionCommand(_fed, (StringCommand(*(shlex.quote(word) for word in command)), stdin), {})


def _fed(state: Any, host: Any, command: StringCommand, stdin: str) -> bool:
    ok, output = _run_on(state, host.name, command, stdin)
    if not ok:
        host.log(f"{command.get_raw_value()} failed: {' '.join(output.stderr_lines)[-500:]}", logger.error)
    return bool(ok)


@unless(lambda needed, **_: not needed)
@operation()
def unpack(path: str, archive: bytes, needed: bool):
    """
    Unpack a gzipped tar into a new directory `path`, owned by root, appearing whole or not at all.

    + needed: False when `path` is already the live release
    """
    building = shlex.quote(f"{path}.djangohost-new")
    upload, staged = _upload(BytesIO(archive), path)
    yield upload
    yield (
        f"rm -rf {building} && mkdir -p {building} && "
        f"tar -xzf {staged} -C {building} --no-same-owner && "
        f"rm -f {staged} && rm -rf {shlex.quote(path)} && mv {building} {shlex.quote(path)}"
    )


# A SECRET_KEY made on the host, never seen by the machine running pyinfra.
GENERATE_SECRET_KEY = "head -c 48 /dev/urandom | base64 | tr -d '\\n/+='"


def _env_file_up_to_date(content: str, current: EnvFileState | None, **_: Any) -> bool:
    if current is None:
        return False
    if any(line.startswith("SECRET_KEY=") for line in content.splitlines()):
        return current.sha256 == sha256(content)
    return current.has_secret_key and current.public_sha256 == sha256(content)


@unless(_env_file_up_to_date)
@operation()
def env_file(
    path: str,
    content: str,
    group: str,
    current: EnvFileState | None,
    secrets: Mapping[str, str],
    key_from: str | None = None,
):
    """
    Write an app's environment file (root:group, 0640). Unless `content` sets SECRET_KEY, the file
    keeps the SECRET_KEY line it has (or else `key_from` has), or gets one generated on the host
    the first time.

    + content: KEY=value lines, SECRET_KEY among them only when the inventory gives it
    + current: the file's EnvFileState from HostState, or None when it does not exist
    + secrets: the secret variables among the content's: masked in --diff output, on both sides
    + key_from: another file whose SECRET_KEY line is kept when this one has none (the live file
      of a staged one)
    """
    given_key = any(line.startswith("SECRET_KEY=") for line in content.splitlines())
    if _diffing():
        lines = None
        if current is not None:
            lines = host.get_fact(MaskedEnvFile, path=path, secret_keys=sorted(secrets))
            if not given_key:  # the generated key stays as it is: not part of the change
                lines = [line for line in lines if not line.startswith("SECRET_KEY=")]
        _show_diff(path, lines, mask_env(content, secrets))
    quoted = shlex.quote(path)
    temp = f"{path}.djangohost-new"
    quoted_temp = shlex.quote(temp)
    upload, staged = _upload(StringIO(content), temp)
    yield upload
    sources = " ".join([quoted, *([shlex.quote(key_from)] if key_from else [])])
    keep_key = (
        "" if given_key else
        f" && {{ grep -h -m1 '^SECRET_KEY=' {sources} 2>/dev/null | head -n 1 | grep . || "
        f"echo \"SECRET_KEY=$({GENERATE_SECRET_KEY})\"; }} >>{quoted_temp}"
    )
    yield (f"{_place(staged, temp)} && chown root:{group} {quoted_temp} && chmod 640 {quoted_temp}{keep_key} && "
           f"mv -f {quoted_temp} {quoted}")


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
    def of(cls, state: State, path: str, *inputs: str) -> Stamp:
        """The stamp at `path` (from paths.stamp) for a reaction to `inputs`."""
        digest = sha256("\0".join(inputs))
        current = state.paths.get(path)
        return cls(path, digest, not current or current.sha256 != sha256(digest + "\n"))

    @property
    def write(self) -> str:
        return f"echo {self.digest} > {self.path}"


class Guard:
    """One app's deploy: its risky steps (builds, migrations, health checks) may fail without
    failing the host, and every later step of that app runs only while none has failed, so one
    app's failure leaves the other apps' deploys going and its own previous release serving."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.risky: list[OperationMeta] = []
        # What else must hold as the run goes (see deploys.components.balancer.roll: the app servers before this one).
        self.waits: list[Callable[[], bool]] = []

    def ok(self) -> bool:
        return not any(op.is_complete() and op.did_error() for op in self.risky) and all(wait() for wait in self.waits)

    def failed(self) -> bool:
        return not self.ok()

    def watch(self, op: OperationMeta) -> OperationMeta:
        self.risky.append(op)
        return op


def happened(ops: Iterable[OperationMeta]) -> bool:
    """Whether any of `ops` changed something; while pyinfra plans, whether any will."""
    return any(op.did_change() if state.is_executing else op.will_change for op in ops)


def react(name: str, action: str, stamps: Iterable[Stamp], changes: Iterable[OperationMeta],
          guard: Guard | None = None, unless: Iterable[OperationMeta] = (),
          risky: bool = False, step: str | None = None) -> OperationMeta:
    """Run the shell `action` when one of the `changes` operations changed something or the first stamp
    is stale, then record every stamp as applied. A reaction in `unless` that happens makes this
    one redundant; a `risky` reaction may fail without failing the host (see Guard). Given a
    `step` name, it runs in the background: finished() waits for it.

    The same condition is the operation's `_if` and decides, while pyinfra plans, whether the
    reaction is shown: a dry run lists exactly the reactions a real run then performs. A reaction
    that nothing can bring about is not made at all (UNCHANGED): an operation that will not change
    as planned does not as it runs, and a stamp stays as read."""
    stamps, changes, unless = list(stamps), list(changes), list(unless)

    def brought_about() -> bool:
        return (bool(stamps) and stamps[0].stale) or happened(changes)

    def due() -> bool:
        return (guard is None or guard.ok()) and not happened(unless) and brought_about()

    if not brought_about():
        return UNCHANGED

    # A subshell, so a multi-line command's `exit 0` still leads to the stamps.
    script = " && ".join([f"(\n{action}\n)", *(stamp.write for stamp in stamps)])
    op = command(name=name, command=in_background(step, script) if step else script, needed=due,
                 reason="nothing to react to",
                 _if=due, _ignore_errors=risky)
    return guard.watch(op) if guard and risky else op


def in_background(step: str, script: str) -> str:
    """The shell `script` as a background step, which waits for a core of its own (see
    templates/engine/djangohost-background.j2): a deploy's builds and checks of several apps run
    side by side, one per core."""
    return f"{BACKGROUND_TOOL} start --one-per-core --run {lock.TOKEN} {step} sh -c {shlex.quote(script)}"


def finished(name: str, step: str, started: OperationMeta, guard: Guard) -> OperationMeta:
    """Wait for the background `step` that `started` started: it fails, as the step did, with
    the step's output, and stops the app's deploy (see Guard). Not made when nothing starts it."""
    if not started.will_change:
        return UNCHANGED
    return guard.watch(command(name=name, command=f"{BACKGROUND_TOOL} wait {step}",
                               needed=lambda: happened([started]), reason=f"{step} did not run",
                               _ignore_errors=True))


@operation(is_idempotent=False)
def download(files: Mapping[str, str], into: str, ready: Callable[[], None], recipient: str | None = None):
    """
    Copy files of the host to this machine, then call `ready`.

    + files: host path -> local file name in `into` (created when missing); a name ending in
      .age is the file encrypted on the host to `recipient`, an age public key
    + ready: run once every file arrived (checks them, moves them into place)

    Under sudo, pyinfra would copy each file to /tmp readable by all for the download; root
    copies (or encrypts) it into the login user's private directory (paths.UPLOADS) instead.
    """
    yield FunctionCommand(os.makedirs, (into,), {"mode": 0o700, "exist_ok": True})
    for source, name in files.items():
        staged = _staged(source)
        copy = (f"age -r {shlex.quote(recipient or '')} -o {staged} {shlex.quote(source)}" if name.endswith(".age")
                else f"cp {shlex.quote(source)} {staged}")
        yield f"{copy} && chown \"$(stat -c %U {UPLOADS})\" {staged}"
        yield FileDownloadCommand(staged, os.path.join(into, name), _sudo=False)
        yield f"rm -f {staged}"
    yield FunctionCommand(ready, (), {})


@operation(is_idempotent=False)
def tell(op: OperationMeta):
    """
    Show what `op` printed, as the run goes (pyinfra shows a command's output only with -vvv).

    + op: an operation of this host that ran before
    """

    def show(state, host) -> bool:
        for line in op.stdout_lines:
            host.log(safe.printable(line, keep="\t"), logger.warning)
        return True

    yield FunctionCommand(show, (), {})
