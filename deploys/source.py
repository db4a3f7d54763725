"""An app's code as it is shipped: a deterministic archive of its source and the hashes that name
its release and its virtualenv, so an unchanged source or requirements file changes nothing."""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from deploys.inventory import App, HostSettings

# Never shipped: caches, version control, local virtualenvs, local databases.
EXCLUDED_NAMES = {"__pycache__", ".git", ".hg", ".venv", "venv", "node_modules", ".mypy_cache",
                  ".pytest_cache", ".ruff_cache", "db.sqlite3"}
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
    """What the deploy adds to an app's requirements: Gunicorn, and the PostgreSQL driver."""
    packages = [f"gunicorn=={settings.gunicorn_version}"]
    if app.database:
        packages.append(settings.database_driver)
    return packages


def venv_key(app: App, settings: HostSettings) -> str:
    """Names the virtualenv: the same python, added packages and requirements give the same one."""
    requirements = (app.source / app.requirements).read_bytes() if app.requirements else b""
    digest = hashlib.sha256("\0".join([settings.python, *venv_packages(app, settings), ""]).encode())
    digest.update(requirements)
    return digest.hexdigest()[:12]
