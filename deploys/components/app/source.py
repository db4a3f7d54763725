"""An app's code as it is shipped: a deterministic archive of a local source, or a commit of a git
source, and the hashes that name its release and its virtualenv, so an unchanged source or
dependency file changes nothing."""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploys.components import broker
from deploys.model import defaults
from deploys.model.inventory import App, HostSettings, dependencies
from deploys.model.paths import RELEASE_MARKERS
from facts.git import Mirror

# Never shipped: caches, version control, local virtualenvs, local databases, djangohost's markers.
EXCLUDED_NAMES = {"__pycache__", ".git", ".hg", ".venv", "venv", "node_modules", ".mypy_cache",
                  ".pytest_cache", ".ruff_cache", "db.sqlite3", *RELEASE_MARKERS}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class SourceArchive:
    data: bytes
    digest: str  # sha256 of the shipped paths, modes and contents

    @property
    def short(self) -> str:
        return self.digest[:12]


def _shipped(path: Path) -> bool:
    return path.name not in EXCLUDED_NAMES and not path.name.endswith(EXCLUDED_SUFFIXES)


def _walk(root: Path):
    for path in sorted(root.iterdir()):
        if not _shipped(path) or path.is_symlink():
            continue
        if path.is_dir():
            yield path
            yield from _walk(path)
        elif path.is_file():
            yield path


@functools.cache
def archive(source: Path) -> SourceArchive:
    """A gzipped tar of `source` that depends only on its paths, modes and contents."""
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in _walk(source):
            relative = path.relative_to(source).as_posix()
            info = tarfile.TarInfo(relative)
            info.mtime = 0
            executable = path.stat().st_mode & 0o100
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                digest.update(f"d {relative}\n".encode())
                continue
            content = path.read_bytes()
            info.size = len(content)
            info.mode = 0o755 if executable else 0o644
            tar.addfile(info, io.BytesIO(content))
            digest.update(f"f {relative} {info.mode:o} {len(content)}\n".encode())
            digest.update(content)
    # gzip writes the time into its header; the archive bytes need not be stable, the digest is.
    return SourceArchive(buffer.getvalue(), digest.hexdigest())


def venv_packages(app: App, settings: HostSettings) -> list[str]:
    """What the deploy adds to an app's requirements unless the project names it: Gunicorn, its
    database's driver, and for an ASGI app uvicorn's worker and uvicorn (see dependencies.added)."""
    asgi = [f"uvicorn-worker=={defaults.UVICORN_WORKER_VERSION}", f"uvicorn[standard]=={defaults.UVICORN_VERSION}",
            defaults.WEBSOCKETS_REQUIREMENT, *([defaults.CHANNELS_REDIS_REQUIREMENT] if broker.maxmemory(app) else [])
            ] if app.asgi else []
    return [f"gunicorn=={settings.gunicorn_version}", *([app.engine.driver(settings)] if app.database else []), *asgi]


def venv_key(python: str, packages: list[str], digest: str) -> str:
    """Names a virtualenv: the same python, added packages and dependency files give the same one
    (dependencies.key, as the host computes it)."""
    return str(dependencies.key(python, packages, digest))


@dataclass(frozen=True)
class Code:
    """An app's code as the plan knows it. For a git source whose mirror could not be fetched
    while planning (a first deploy, a new URL or deploy key), commit and dependencies are known
    only once the deploy fetched it."""

    short: str | None  # content digest or commit, 12 characters
    commit: str | None = None  # git sources
    dependencies: str | None = None  # the digest of its dependency files (see dependencies.find)
    names: frozenset[str] = frozenset()  # the packages they ask for
    files: Mapping[str, bytes] = field(default_factory=dict)  # local sources: the dependency files

    def packages(self, app: App, settings: HostSettings) -> list[str]:
        """What the deploy adds to the project's dependencies."""
        return list(dependencies.added(self.names, venv_packages(app, settings)))


def code(app: App, mirror: Mirror | None) -> Code:
    """What `app` deploys: its local source's archive, or the commit its git ref resolves to."""
    if app.git is None:  # its dependency files were found when the inventory was read
        found = dependencies.find(dependencies.from_directory(str(app.source)), app.project_dir, app.requirements)
        return Code(archive(app.source).short, dependencies=found.digest, names=frozenset(found.names),
                    files=found.files)
    if mirror is None or mirror.url != app.git.url or not mirror.commit or mirror.dependencies is None:
        return Code(None)
    return Code(mirror.commit[:12], commit=mirror.commit, dependencies=mirror.dependencies,
                names=frozenset(mirror.names))
