"""managed by djangohost: what decides an app's virtualenv, and its build.

The same code runs on the machine that plans a deploy (a local source, read from disk) and on the
host (a git source, read from its mirror; every build), so both name a virtualenv alike:

    python3 dependencies.py digest --project-dir DIR [--requirements FILE] --git COMMIT
    python3 dependencies.py build --uv UV --python PYTHON --venv VENV --project-dir DIR
                                  [--requirements FILE] [--add REQUIREMENT]... [--build-tools]

How a project's dependencies are installed is decided by what it brings, looked for in the
directory of manage.py, then in each directory above it up to the repository's root:

    uv.lock (with pyproject.toml)   uv sync --frozen, without dev groups or the project itself
    poetry.lock (with pyproject)    its main dependencies and theirs, at the locked versions
    Pipfile.lock                    its default packages, at the locked versions
    requirements.txt                uv pip install -r, and every file it includes (-r, -c); or
                                    requirements/production.txt (or prod.txt)
    pyproject.toml                  uv pip install -r pyproject.toml (its [project] dependencies)

A `requirements` file the inventory names wins over all of them; a project with none of them is
refused, with the reason. Every file read is part of the
digest; the names of the packages asked for tell which of djangohost's own packages are added (a
project that pins Gunicorn keeps its version).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field

Reader = Callable[[str], "bytes | None"]
# A lock file's packages: as requirement lines, and their names.
Pins = tuple[list[str], set[str]]
# The largest dependency file read: a lock of thousands of packages is a few MB.
MAX_SIZE = 16 * 1024 * 1024

# A -r/-c line of a requirements file: the option and the file it names.
INCLUDE_RE = re.compile(r"^(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s*)(\S+)$")
NAME_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
# A project that asks for one of these needs no PostgreSQL driver of djangohost's (Django uses psycopg
# 2 or 3); one that asks for psycopg 3 alone still needs an implementation (its binary one).
POSTGRESQL_DRIVERS = {"psycopg2", "psycopg2-binary", "psycopg-binary", "psycopg-c"}
# The lock files of other tools, installed as requirement lines of their packages (Dependencies.pinned).
LOCKS = ("poetry.lock", "Pipfile.lock")
# What serves WebSockets under uvicorn: uvicorn[standard] brings websockets; a project that names
# uvicorn (its own version wins) without one of these gets websockets added, or uvicorn refuses
# every WebSocket.
WEBSOCKET_LIBRARIES = {"websockets", "wsproto"}
# Where a project without requirements.txt keeps the requirements a server installs.
SERVER_REQUIREMENTS = ("requirements/production.txt", "requirements/prod.txt")


class Refused(Exception):
    """The project's dependency files cannot be read as they are."""


@dataclass
class Dependencies:
    mode: str  # uv.lock, poetry.lock, Pipfile.lock, requirements or pyproject
    root: str  # where uv runs: the directory of the files ("" for the repository's root)
    files: dict[str, bytes] = field(default_factory=dict)  # path -> content, every file read
    names: set[str] = field(default_factory=set)  # packages asked for, normalized
    main: str = ""  # the file uv is given
    pinned: list[str] = field(default_factory=list)  # a lock file's packages, as requirement lines

    @property
    def digest(self) -> str:
        """One requirements file alone: its sha256 (the names virtualenvs had before includes were
        read); else a digest of every file's path and content, and the mode."""
        if self.mode == "requirements" and len(self.files) == 1:
            return hashlib.sha256(self.files[self.main]).hexdigest()
        summary = hashlib.sha256(self.mode.encode())
        for path in sorted(self.files):
            summary.update(f"\0{path}\0{hashlib.sha256(self.files[path]).hexdigest()}".encode())
        return summary.hexdigest()


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def inside(path: str) -> str:
    """`path` normalized within the repository, or Refused when it leaves it."""
    clean = posixpath.normpath(path)
    if clean.startswith("../") or clean == ".." or posixpath.isabs(clean):
        raise Refused(f"{path} is outside the repository")
    return "" if clean == "." else clean


def requirement_lines(text: str) -> list[str]:
    """A requirements file's logical lines, comments and continuations resolved."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            lines.append(line)
    return lines


def read_requirements(read: Reader, path: str, found: Dependencies, seen: tuple[str, ...] = (),
                      constraints: bool = False) -> None:
    """Read `path` and every file it includes into `found`; what constraints files name is not
    asked for."""
    if path in seen or path in found.files:
        return
    content = read(path)
    if content is None:
        included_by = f" (included by {seen[-1]})" if seen else ""
        raise Refused(f"{path}{included_by} is not in the repository")
    found.files[path] = content
    for line in requirement_lines(content.decode(errors="replace")):
        include = INCLUDE_RE.match(line)
        if include:
            target = include.group(1)
            if "://" not in target:  # a URL's content is not read
                read_requirements(read, inside(posixpath.join(posixpath.dirname(path), target)), found,
                                  (*seen, path), constraints or line.startswith(("-c", "--constraint")))
            continue
        name = NAME_RE.match(line)
        if name and not line.startswith("-") and not constraints:
            found.names.add(normalized(name.group(1)))


def pyproject_names(content: bytes) -> set[str] | None:
    """The packages a pyproject.toml's [project] asks for; None when it names no dependencies."""
    project = toml(content, "pyproject.toml").get("project", {})
    if "dependencies" not in project:
        return None
    return {normalized(match.group(1)) for line in project["dependencies"]
            if (match := NAME_RE.match(line.strip()))}


def toml(content: bytes, name: str) -> dict:
    try:
        return tomllib.loads(content.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise Refused(f"{name} cannot be read: {error}") from None


def lock_names(content: bytes) -> set[str]:
    return {normalized(package["name"]) for package in toml(content, "uv.lock").get("package", [])
            if "name" in package}


def wanted_by_poetry(pyproject: dict) -> list[tuple[str, list[str]]]:
    """The main dependencies a pyproject.toml names for Poetry, with their extras: [project]'s, or
    [tool.poetry.dependencies]' (optional ones only come with an extra of the project)."""
    found = []
    for line in pyproject.get("project", {}).get("dependencies", []):
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", line)
        if match:
            found.append((normalized(match.group(1)), [e.strip() for e in (match.group(2) or "").split(",") if e]))
    for name, spec in pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {}).items():
        if name.lower() != "python" and not (isinstance(spec, dict) and spec.get("optional")):
            found.append((normalized(name), list(spec.get("extras", [])) if isinstance(spec, dict) else []))
    return found


def poetry_requirement(package: dict, root: str) -> str:
    """A locked package as a requirement line: its version, or where Poetry fetched it from."""
    name, source = package["name"], package.get("source", {})
    kind = source.get("type")
    if kind == "git":
        return f"{name} @ git+{source['url']}@{source.get('resolved_reference') or source['reference']}"
    if kind == "url":
        return f"{name} @ {source['url']}"
    if kind in ("directory", "file"):
        return f"{name} @ file://{local(root, source['url'])}"
    markers = package.get("markers")
    return f"{name}=={package['version']}" + (f" ; {markers}" if isinstance(markers, str) else "")


def local(root: str, path: str) -> str:
    """A local package's absolute path in the project's copy (the build's working directory), or
    Refused when it lies outside the repository."""
    return os.path.abspath(inside(posixpath.join(root, path)) or ".")


def poetry_pins(pyproject: bytes, lock: bytes, root: str) -> tuple[list[str], set[str]]:
    """The packages of poetry.lock that the project's main dependencies need (and theirs, with the
    extras asked for), as requirement lines, and their names."""
    packages = {normalized(package["name"]): package for package in toml(lock, "poetry.lock").get("package", [])}
    needed: dict[str, set[str]] = {}
    queue = wanted_by_poetry(toml(pyproject, "pyproject.toml"))
    while queue:
        name, extras = queue.pop()
        package = packages.get(name)
        if package is None:
            continue
        # Each package's dependencies once, each extra's once: a lock cannot make it quadratic.
        first, new = name not in needed, set(extras) - needed.get(name, set())
        needed.setdefault(name, set()).update(new)
        for dependency, spec in package.get("dependencies", {}).items() if first else ():
            specs = spec if isinstance(spec, list) else [spec]
            if all(isinstance(one, dict) and one.get("optional") for one in specs):
                continue
            queue.append((normalized(dependency), [e for one in specs if isinstance(one, dict)
                                                   for e in one.get("extras", [])]))
        for extra in sorted(new):
            for requirement in package.get("extras", {}).get(extra, []):
                match = NAME_RE.match(requirement.strip())
                if match:
                    queue.append((normalized(match.group(1)), []))
    return [poetry_requirement(packages[name], root) for name in sorted(needed)], set(needed)


def pipfile_pins(lock: bytes, root: str) -> tuple[list[str], set[str]]:
    """Pipfile.lock's default packages, as requirement lines, and their names."""
    try:
        default = json.loads(lock.decode()).get("default", {})
    except (ValueError, UnicodeDecodeError) as error:
        raise Refused(f"Pipfile.lock cannot be read: {error}") from None
    lines = []
    for name, package in sorted(default.items()):
        extras = f"[{','.join(package['extras'])}]" if package.get("extras") else ""
        markers = f" ; {package['markers']}" if package.get("markers") else ""
        if "git" in package:
            lines.append(f"{name}{extras} @ git+{package['git']}@{package.get('ref', 'HEAD')}{markers}")
        elif "path" in package:
            if inside(posixpath.join(root, package["path"])) == root:
                continue  # the project itself, which is not installed (as with uv.lock)
            lines.append(f"{name}{extras} @ file://{local(root, package['path'])}{markers}")
        elif "file" in package:
            lines.append(f"{name}{extras} @ {package['file']}{markers}")
        else:
            lines.append(f"{name}{extras}{package.get('version', '')}{markers}")
    return lines, {normalized(name) for name in default}


def find(read: Reader, project_dir: str = "", requirements: str | None = None) -> Dependencies:
    """The project's dependencies: `requirements` when given, else the first of uv.lock,
    requirements.txt and pyproject.toml in the directory of manage.py or one above it; Refused
    when there is none."""
    if requirements:
        found = Dependencies("requirements", "", main=inside(requirements))
        read_requirements(read, found.main, found)
        return found
    directory = inside(project_dir)
    while True:
        here = in_directory(read, directory)
        if here:
            return here
        if not directory:
            raise Refused(f"no uv.lock, poetry.lock, Pipfile.lock, requirements.txt "
                          f"({' or '.join(SERVER_REQUIREMENTS)}) or pyproject.toml with [project] dependencies "
                          "from manage.py's directory up to the repository's root: name the file to install in the "
                          "app's `requirements` field")
        directory = posixpath.dirname(directory)


def readable(path: str, read: Callable[[], Pins]) -> Pins:
    """What `read` makes of a lock file, or Refused when it is not what its tool writes."""
    try:
        return read()
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise Refused(f"{path} is not a lock file its tool wrote ({type(error).__name__}: {error})") from None


def in_directory(read: Reader, directory: str) -> Dependencies | None:
    """The dependencies a directory's own files give, if any."""
    lock_path, requirements_path, pyproject_path = (posixpath.join(directory, name)
                                                    for name in ("uv.lock", "requirements.txt", "pyproject.toml"))
    lock, pyproject = read(lock_path), read(pyproject_path)
    if lock is not None and pyproject is not None:
        return Dependencies("uv.lock", directory, {pyproject_path: pyproject, lock_path: lock}, lock_names(lock),
                            main=lock_path)
    poetry_path, pipfile_path = posixpath.join(directory, "poetry.lock"), posixpath.join(directory, "Pipfile.lock")
    poetry, pipfile = read(poetry_path), read(pipfile_path)
    if poetry is not None and pyproject is not None:
        pinned, names = readable(poetry_path, lambda: poetry_pins(pyproject, poetry, directory))
        return Dependencies("poetry.lock", directory, {pyproject_path: pyproject, poetry_path: poetry}, names,
                            main=poetry_path, pinned=pinned)
    if pipfile is not None:
        pinned, names = readable(pipfile_path, lambda: pipfile_pins(pipfile, directory))
        return Dependencies("Pipfile.lock", directory, {pipfile_path: pipfile}, names, main=pipfile_path,
                            pinned=pinned)
    for path in (requirements_path, *(posixpath.join(directory, name) for name in SERVER_REQUIREMENTS)):
        if read(path) is not None:
            found = Dependencies("requirements", directory, main=path)
            read_requirements(read, path, found)
            return found
    asked = pyproject_names(pyproject) if pyproject is not None else None
    if pyproject is not None and asked is not None:
        return Dependencies("pyproject", directory, {pyproject_path: pyproject}, asked, main=pyproject_path)
    return None


def added(names: set[str] | frozenset[str], wanted: list[str]) -> list[str]:
    """The requirements of djangohost's own (Gunicorn, a database driver, uvicorn's worker and
    uvicorn) whose package the project does not ask for itself (`names`): a project's own version
    wins. websockets is added only beside a uvicorn of the project's without a WebSocket library,
    channels-redis only beside Channels."""
    extra = []
    for requirement in wanted:
        match = NAME_RE.match(requirement)
        name = normalized(match.group(1)) if match else requirement
        if name == "psycopg" and "psycopg" in names and not names & POSTGRESQL_DRIVERS:
            extra.append("psycopg[binary]")  # at the project's version
        elif name == "websockets":
            if "uvicorn" in names and not names & WEBSOCKET_LIBRARIES:
                extra.append(requirement)
        elif name == "channels-redis":  # the layer in the app's Redis, for a project with Channels
            if "channels" in names and name not in names:
                extra.append(requirement)
        elif name not in names and not (name == "psycopg" and names & POSTGRESQL_DRIVERS):
            extra.append(requirement)
    return extra


def key(python: str, packages: list[str], digest: str) -> str:
    """Names a virtualenv: the same python, added packages and dependency files give the same one."""
    return hashlib.sha256("".join(f"{line}\n" for line in (python, *packages, digest)).encode()).hexdigest()[:12]


def bounded(path: str, size: int) -> None:
    if size > MAX_SIZE:
        raise Refused(f"{path} is larger than {MAX_SIZE // 1024 // 1024} MiB")


def from_directory(root: str) -> Reader:
    """Read files of a directory, regular files only, never through a link out of it."""
    def read(path: str) -> bytes | None:
        full = os.path.join(root, path)
        if os.path.islink(full) or not os.path.isfile(full) or not os.path.realpath(full).startswith(
                os.path.realpath(root) + os.sep):
            return None
        with open(full, "rb") as f:
            content = f.read(MAX_SIZE + 1)
        bounded(path, len(content))
        return content
    return read


def from_git(commit: str) -> Reader:
    """Read files of a commit of the repository in the current directory."""
    def read(path: str) -> bytes | None:
        size = subprocess.run(["git", "cat-file", "-s", f"{commit}:{path}"], capture_output=True, text=True)
        if size.returncode != 0:
            return None
        bounded(path, int(size.stdout))
        proc = subprocess.run(["git", "cat-file", "blob", f"{commit}:{path}"], capture_output=True)
        return proc.stdout if proc.returncode == 0 else None
    return read


def uv_commands(found: Dependencies, args: argparse.Namespace, extra: list[str],
                pinned: str = "") -> list[list[str]]:
    """What uv runs to build the virtualenv, in the project's copy (`pinned`: the file of a lock
    file's packages as requirement lines)."""
    venv_python = f"{args.venv}/bin/python"
    commands = [[args.uv, "venv", "--quiet", "--python", args.python, args.venv]]
    if found.mode == "uv.lock":
        # Into the virtualenv just made (UV_PROJECT_ENVIRONMENT, see build), not the project's .venv.
        commands.append([args.uv, "sync", "--quiet", "--frozen", "--no-dev", "--no-install-project",
                         "--compile-bytecode", "--project", found.root or "."])
        found_files: list[str] = []
    elif found.mode in LOCKS:
        found_files = ["-r", pinned] if pinned else []
    else:
        found_files = ["-r", found.main]
    if found_files or extra:
        commands.append([args.uv, "pip", "install", "--quiet", "--python", venv_python, "--compile-bytecode",
                         *found_files, *extra])
    return commands


def hint(output: str, args: argparse.Namespace, extra: list[str]) -> str:
    """What to do about a failed install, from uv's own words."""
    if re.search(r"current Python version|requires-python|Requires-Python", output):
        return ("they need another Python than the host's: choose versions that support it, or a host whose "
                "Debian has a newer Python; uv's reason is above")
    gunicorn = [requirement for requirement in extra if requirement.startswith("gunicorn")]
    if gunicorn and "gunicorn" in output.lower():
        return (f"its requirements conflict with {gunicorn[0]}, which djangohost adds: name gunicorn in the "
                "project's requirements (then djangohost adds none), or set the host's djangohost_gunicorn_version")
    if re.search(r"Failed to build|failed to build|error: command|Python\.h|pg_config|gcc", output):
        if args.build_tools:
            return ("a requirement failed to compile: add the system packages its build needs (headers such as "
                    "libpq-dev) to the host's djangohost_packages")
        return ("a requirement has no wheel for this Python and must be compiled: set the host's "
                "djangohost_build_tools to true (and add the headers it needs to djangohost_packages)")
    return "uv's reason is above"


def build(args: argparse.Namespace) -> int:
    """Build the virtualenv from the project's copy in the current directory; print its key."""
    found = find(from_directory("."), args.project_dir, args.requirements)
    extra = added(found.names, args.add)
    environment = dict(os.environ, UV_PROJECT_ENVIRONMENT=args.venv)
    with tempfile.NamedTemporaryFile("w", prefix="djangohost-pinned-", suffix=".txt") as pinned:
        pinned.write("".join(f"{line}\n" for line in found.pinned))
        pinned.flush()
        return install(found, args, extra, environment, pinned.name if found.pinned else "")


def install(found: Dependencies, args: argparse.Namespace, extra: list[str], environment: dict[str, str],
            pinned: str) -> int:
    for command in uv_commands(found, args, extra, pinned):
        proc = subprocess.run(command, capture_output=True, text=True, env=environment)
        sys.stderr.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            python = subprocess.run([args.python, "--version"], capture_output=True, text=True).stdout.strip()
            reason = hint(proc.stdout + proc.stderr, args, extra)
            sys.stderr.write(f"djangohost: app {args.app}: its requirements cannot be installed with {python} "
                             f"({found.main}): {reason}\n")
            return 1
    print(key(args.python, extra, found.digest))
    return 0


def digest(args: argparse.Namespace) -> int:
    """The mode, digest and names of a commit's dependencies, tab-separated."""
    found = find(from_git(args.git), args.project_dir, args.requirements)
    print(f"{found.mode}\t{found.digest}\t{','.join(sorted(found.names))}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dependencies.py")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("digest", "build"):
        command = commands.add_parser(name)
        command.add_argument("--project-dir", default="")
        command.add_argument("--requirements")
    commands.choices["digest"].add_argument("--git", required=True)
    building = commands.choices["build"]
    building.add_argument("--app", required=True)
    building.add_argument("--uv", required=True)
    building.add_argument("--python", required=True)
    building.add_argument("--venv", required=True)
    building.add_argument("--add", action="append", default=[])
    building.add_argument("--build-tools", action="store_true")
    args = parser.parse_args(argv)
    try:
        return {"digest": digest, "build": build}[args.command](args)
    except Refused as refused:
        sys.stderr.write(f"djangohost: its dependency files cannot be read: {refused}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
