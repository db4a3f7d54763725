"""The one fact a deploy reads per host: everything it compares against, in one round trip."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyinfra.api import FactBase

from facts.git import Mirror

# What a secret value is shown as.
MASK = "********"
# Status lines that mark a package as fully installed in `dpkg-query -W -f '${db:Status-Abbrev}'`.
INSTALLED = "ii"

# find's %y letters of the kinds of path a deploy compares against.
PATH_KINDS = {"f": "file", "d": "dir", "l": "link"}


@dataclass
class PathState:
    """What is at a path: kind is file, dir or link."""

    kind: str
    owner: str = ""
    group: str = ""
    mode: str = ""
    sha256: str = ""
    target: str = ""


@dataclass
class EnvFileState:
    """An environment file: sha256 of its lines without SECRET_KEY, and of the whole file."""

    public_sha256: str
    sha256: str
    has_secret_key: bool


class UnwatchedPath(KeyError):
    """A deploy compared against a path HostState was not asked about: it would always find
    nothing there, and a second run would not be a no-op."""


class WatchedPaths(dict[str, "PathState"]):
    """HostState's paths, which answer only for the paths it was asked about: a component that
    compares against a path it did not declare (deploys.components.Component) stops the run while
    it plans, naming the path."""

    def __init__(self, asked: set[str]) -> None:
        super().__init__()
        self.asked = asked

    def _watched(self, path: object) -> None:
        if path not in self.asked:
            raise UnwatchedPath(f"{path} is compared against, but no component declares it (its COMPONENT's "
                                "watched or host_paths)")

    def get(self, path: str, default: PathState | None = None) -> PathState | None:  # type: ignore[override]
        self._watched(path)
        return super().get(path, default)

    def __contains__(self, path: object) -> bool:
        self._watched(path)
        return super().__contains__(path)

    def __getitem__(self, path: str) -> PathState:
        self._watched(path)
        return super().__getitem__(path)


@dataclass
class State:
    login: str = "root"  # the user pyinfra logs in as (under sudo: the SSH user)
    cores: int = 1
    # Nginx's version (installed, or apt's candidate), e.g. (1, 26, 3); () when not known
    nginx_version: tuple[int, ...] = ()
    debian_version: int = 0  # VERSION_ID of /etc/os-release, 0 when not Debian
    systemd: bool = False
    packages: set[str] = field(default_factory=set)
    users: dict[str, str] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)
    enabled: set[str] = field(default_factory=set)
    paths: dict[str, PathState] = field(default_factory=dict)
    env_files: dict[str, EnvFileState] = field(default_factory=dict)
    # What the components' probes printed, by kind (a PostgreSQL role, a MariaDB account...): each
    # component reads its own (deploys.components.Component.probe)
    records: dict[str, list[list[str]]] = field(default_factory=dict)
    # app home -> release id -> key of the virtualenv it passed its candidate check with (or "")
    releases: dict[str, dict[str, str]] = field(default_factory=dict)
    # app home -> release id -> the git commit it was exported from (git sources)
    commits: dict[str, dict[str, str]] = field(default_factory=dict)
    # app home -> complete virtualenv -> its key (see deploys.components.app.source.venv_key)
    venvs: dict[str, dict[str, str]] = field(default_factory=dict)
    # git apps' mirrors, fetched (facts.git.GitMirrors); not part of this fact's output
    mirrors: dict[str, Mirror] = field(default_factory=dict)


# The script (templates/facts/host-state.sh); PathsState runs its list_paths alone.
SCRIPT = (Path(__file__).resolve().parent.parent / "templates" / "facts" / "host-state.sh").read_text()
LIST_PATHS = SCRIPT[SCRIPT.index("list_paths() {"):SCRIPT.index("\n}\n", SCRIPT.index("list_paths() {")) + 3]


def _words(values: Iterable[str]) -> str:
    return " ".join(shlex.quote(value) for value in values)


class HostState(FactBase[State]):
    """
    The state of a host as far as djangohost manages it, in one round trip: CPU cores, init
    system, installed packages, users, groups, running and enabled services, what the components'
    probes print (their servers' roles, databases, accounts), the releases in each app home, and
    for every path asked about its kind, owner, group, mode, sha256 (files) or target (links).
    Environment files are hashed without their SECRET_KEY line, so the fact never carries a
    secret.

    .. code:: python

        State(
            login="deploy", cores=2, nginx_version=(1, 26, 3), debian_version=13,
            systemd=False, packages={"nginx", "supervisor"},
            users={"hello": "/webapps/hello"}, groups={"webapps"}, running={"nginx"},
            enabled=set(),
            paths={"/webapps/hello/conf/gunicorn.conf.py": PathState(
                kind="file", owner="root", group="hello", mode="644", sha256="9f86d0..."),
                "/webapps/hello/current": PathState(
                    kind="link", target="releases/20261122T101500-3f2a9c")},
            env_files={"/webapps/hello/conf/env": EnvFileState("0a1b...", "7c8d...", True)},
            records={"postgres.role": [["hello", "0", "0", "0", "1"]],
                     "mariadb.account": [["shop", "unix_socket"]]},
            releases={"/webapps/hello": {"20261122T101500-3f2a9c": "68a854a128a9"}},
            commits={},
            venvs={"/webapps/hello": {"68a854a128a9": "68a854a128a9"}},
        )
    """

    def command(  # type: ignore[override]
        self,
        paths: Iterable[str] = (),
        env_files: Iterable[str] = (),
        users: Iterable[str] = (),
        groups: Iterable[str] = (),
        packages: Iterable[str] = (),
        homes: Iterable[str] = (),
        guarded: Iterable[tuple[str, str]] = (),
        safe_tool: str = "",
        services: Iterable[tuple[str, str]] = (),
        probes: Iterable[str] = (),
    ) -> str:
        """guarded: (a directory of root's, a path below it) of each path in a tree another user
        writes, read with djangohost-safe (at `safe_tool`) only (see LIST_PATHS); services: (name,
        a check that passes while it runs) of each service; probes: the components' shell
        fragments, printing records "kind<TAB>field..." (see State.records). Only the paths asked
        about answer (WatchedPaths)."""
        guarded = list(guarded)
        self.asked = {*paths, *(f"{directory}/{path}" for directory, path in guarded)}
        assignments = {
            "PATHS": _words(paths),
            "GUARDED_PAIRS": _words(word for pair in guarded for word in pair),
            "GUARDED": _words(f"{directory}/{path}" for directory, path in guarded),
            "SAFE_TOOL": shlex.quote(safe_tool) if safe_tool else "/nonexistent",
            "ENV_FILES": _words(env_files),
            "HOMES": _words(homes),
            "USERS": _words(users),
            "GROUP_NAMES": _words(groups),
            "PACKAGES": _words(packages),
            "SERVICES": "\n".join(
                f"{check} && printf 'running\\t{name}\\n'\n"
                f"[ -d /run/systemd/system ] && systemctl is-enabled --quiet {name} 2>/dev/null"
                f" && printf 'enabled\\t{name}\\n'"
                for name, check in services
            ),
            "PROBES": "\n".join(probes),
        }
        # Values are substituted into the script text (not exported) so that word splitting of
        # the quoted lists works in plain sh.
        script = SCRIPT
        for key, value in assignments.items():  # PROBES last: a probe's own $ words stay as they are
            script = script.replace(f"${key}", value)
        return script

    def process(self, output: Iterable[str]) -> State:  # type: ignore[override]
        asked = getattr(self, "asked", None)
        state = State(paths=WatchedPaths(asked) if asked is not None else {})
        digests: dict[str, str] = {}
        for line in output:
            kind, *fields = line.split("\t")
            if kind == "login":
                state.login = fields[0]
            elif kind == "nginx":
                state.nginx_version = tuple(int(part) for part in re.findall(r"\d+", fields[0].split("-")[0])[:3])
                state.debian_version = int(fields[1]) if fields[1].isdigit() else 0
            elif kind == "cores":
                state.cores = int(fields[0]) if fields[0].isdigit() else 1
            elif kind == "systemd":
                state.systemd = True
            elif kind == "package" and fields[1].startswith(INSTALLED):
                state.packages.add(fields[0])
            elif kind == "user":
                state.users[fields[0]] = fields[1]
            elif kind == "group":
                state.groups.add(fields[0])
            elif kind == "running":
                state.running.add(fields[0])
            elif kind == "enabled":
                state.enabled.add(fields[0])
            elif kind == "path" and fields[1] in PATH_KINDS:
                path, letter, owner, group, mode, target = fields
                state.paths[path] = (PathState("link", target=target) if letter == "l" else
                                     PathState(PATH_KINDS[letter], owner, group, mode))
            elif kind == "sha256":
                digests[fields[1]] = fields[0]
            elif kind == "release":
                home, release, venv, *commit = fields
                state.releases.setdefault(home, {})[release] = venv
                if commit and commit[0]:
                    state.commits.setdefault(home, {})[release] = commit[0]
            elif kind == "venv":
                home, venv, key = fields
                state.venvs.setdefault(home, {})[venv] = key or venv
            elif kind == "env":
                path, public_digest, digest, key_lines = fields
                state.env_files[path] = EnvFileState(public_digest, digest, key_lines != "0")
            elif "." in kind:  # a component's probe
                state.records.setdefault(kind, []).append(fields)
        for path, digest in digests.items():
            if dict.__contains__(state.paths, path):
                dict.__getitem__(state.paths, path).sha256 = digest
        return state

    @staticmethod
    def default() -> State:
        return State()


class PathsState(FactBase[dict[str, PathState]]):
    """
    HostState's paths alone, without the rest of the host: for reading the files of another host
    as pyinfra plans (a database server's, for its app servers), in a few milliseconds.

    .. code:: python

        {"/etc/djangohost/postgresql/hello.pgpass": PathState(
            kind="file", owner="root", group="root", mode="600", sha256="10883b...")}
    """

    def command(self, paths: Iterable[str]) -> str:  # type: ignore[override]
        return f"{LIST_PATHS}list_paths {_words(paths)}\ntrue"

    def process(self, output: Iterable[str]) -> dict[str, PathState]:  # type: ignore[override]
        return HostState().process(output).paths

    @staticmethod
    def default() -> dict[str, PathState]:
        return {}


class MaskedEnvFile(FactBase[list[str]]):
    """
    The lines of an environment file with the values of `secret_keys` (and SECRET_KEY) masked on
    the host, so that a secret never leaves it; for diffs. Empty when the file does not exist.

    .. code:: python

        ["DJANGO_SETTINGS_MODULE=djangohost_settings", "TOKEN=********", "SECRET_KEY=********"]
    """

    def command(self, path: str, secret_keys: Iterable[str] = ()) -> str:  # type: ignore[override]
        keys = "|".join(["SECRET_KEY", *secret_keys])  # variable names: [A-Za-z_][A-Za-z0-9_]*
        return f"sed -E 's/^({keys})=.*/\\1={MASK}/' {shlex.quote(path)} 2>/dev/null; true"

    def process(self, output: Iterable[str]) -> list[str]:  # type: ignore[override]
        return list(output)

    @staticmethod
    def default() -> list[str]:
        return []
