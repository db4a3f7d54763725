"""The git mirrors of apps whose source is a git repository."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from pyinfra.api import FactBase

# Run as the app's build identity inside its mirror: fetch, resolve the ref at what was fetched, and
# read what decides the virtualenv at that commit with djangohost's program (when the host has it:
# else the build finds it). A fetch or a ref that fails is reported, not raised: the deploy decides
# what it means.
FETCH = r"""
cd "$1" 2>/dev/null && [ -f HEAD ] || exit 0
url=$(git config remote.origin.url)
if ! out=$(git fetch --quiet --prune origin 2>&1); then
  printf 'error\t%s\t%s\n' "$url" "$(printf '%s' "$out" | tail -n 3 | tr '\t\n' '  ')"; exit 0
fi
if ! commit=$(git rev-parse --verify --quiet "$2^{commit}"); then
  printf 'noref\t%s\tref %s not found in the repository\n' "$url" "$2"; exit 0
fi
[ -f "$5" ] || { printf 'ok\t%s\t%s\n' "$url" "$commit"; exit 0; }
if ! found=$(timeout 60 python3 "$5" digest --git "$commit" --project-dir "$3" ${4:+--requirements "$4"} 2>&1); then
  printf 'error\t%s\t%s\n' "$url" "$(printf '%s' "$found" | tail -n 1 | tr '\t\n' '  ')"; exit 0
fi
printf 'ok\t%s\t%s\t%s\n' "$url" "$commit" "$found"
"""


def as_user(user: str, home: str, command: str) -> str:
    """Shell: `command` run as `user` (an app's, or its build identity), with `home` as HOME (git
    and uv read their configuration and caches there): in a session of its own, with no standard
    input of root's, so that nothing it runs holds a terminal root may have."""
    return f"setsid --wait runuser -u {user} -- env HOME={shlex.quote(home)} {command} </dev/null"


@dataclass(frozen=True)
class Mirror:
    url: str  # where it fetches from
    commit: str = ""  # what the ref resolved to after the fetch
    dependencies: str | None = None  # the digest of its dependency files at that commit (None: not read)
    names: tuple[str, ...] = ()  # the packages they ask for
    error: str = ""  # why the fetch or the ref failed
    ref_missing: bool = False  # fetched, but the repository has no such ref


class GitMirrors(FactBase[dict[str, Mirror]]):
    """
    Fetch each app's mirror (a bare repository its build identity owns, see deploys.model.paths) as
    that user and resolve the app's ref, in one round trip. Apps without a mirror yet are left out.

    .. code:: python

        {"hello": Mirror(url="ssh://git@git.example.com/hello.git",
                         commit="3f2a9c7d...", dependencies="9f86d0...", names=("django",))}
    """

    def command(self, apps: Iterable[tuple[str, str, str, str, str, str]] = (),  # type: ignore[override]
                program: str = "") -> str:
        """apps: (app, its build user, that user's home, ref, project directory, requirements path or
        "") for each git app; program: the host's templates/app/dependencies.py."""
        lines = []
        for app, user, home, ref, project_dir, requirements in apps:
            mirror = shlex.quote(f"{home}/repo")
            words = " ".join(shlex.quote(word) for word in (ref, project_dir, requirements, program))
            fetch = f"sh -c {shlex.quote(FETCH)} sh {mirror} {words}"
            lines.append(
                f"id -u {user} >/dev/null 2>&1 && [ -f {mirror}/HEAD ] && "
                f"{as_user(user, home, fetch)} | sed 's/^/{app}\\t/'"
            )
        return "\n".join([*lines, "true"])

    def process(self, output: Iterable[str]) -> dict[str, Mirror]:  # type: ignore[override]
        mirrors = {}
        for line in output:
            app, status, url, *rest = line.split("\t")
            if status == "ok" and len(rest) == 4:  # commit, mode, digest, names
                names = tuple(filter(None, rest[3].split(",")))
                mirrors[app] = Mirror(url, commit=rest[0], dependencies=rest[2], names=names)
            elif status == "ok":
                mirrors[app] = Mirror(url, commit=rest[0])
            else:
                mirrors[app] = Mirror(url, error=rest[0] if rest else "unknown error",
                                       ref_missing=status == "noref")
        return mirrors

    @staticmethod
    def default() -> dict[str, Mirror]:
        return {}
