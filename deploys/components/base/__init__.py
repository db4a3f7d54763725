"""What every host needs: the packages its components need (most of them installed while the apps
build), the apps' group, uv, djangohost's programs, and the servers running."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from pyinfra.api import deploy
from pyinfra.operations import apt

from deploys.components import Component, Needs, Packages
from deploys.engine import lock, ops, safe
from deploys.engine.templates import TEMPLATES, render
from deploys.model import paths
from deploys.model.defaults import BUILD_PACKAGES, BUILD_TOOLS, PACKAGES, UV_VERSION
from deploys.model.inventory import App, HostSettings
from facts.state import State

# A stopped run's install still going is waited for (DPkg::Lock::Timeout), and so is the host's own
# (unattended-upgrades); a changed configuration file of a package is kept as the host has it.
APT_INSTALL = ("DEBIAN_FRONTEND=noninteractive apt-get -y -o DPkg::Lock::Timeout=600 "
               "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --no-install-recommends")


def _packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    """What building the apps' releases and virtualenvs needs: Python and pip's wheel (uv's
    install), git for apps from git, the compilers where the host asks for them, and the packages
    the host's djangohost_packages adds (headers a build needs, such as libpq-dev); then the host's
    own list (djangohost_packages)."""
    with_git = ("git", "openssh-client") if any(app.git for app in apps) else ()
    added = tuple(package for package in settings.packages if package not in PACKAGES)
    return Packages(builds=(*BUILD_PACKAGES, *(BUILD_TOOLS if settings.build_tools else ()), *with_git, *added),
                    others=settings.packages)


COMPONENT = Component("base", packages=_packages, host_paths=(
    paths.STAMPS, paths.UPLOADS, paths.BUILD, paths.UV, paths.BACKGROUND_TOOL, paths.BUILD_TOOL, paths.SAFE_TOOL,
    paths.DEPENDENCIES, paths.HEALTH, paths.PUBLISH_STATIC))


@dataclass
class Missing:
    """The packages a host lacks: those builds need (installed first), those the apps' checks need
    (installed in the background while the apps build, see check_services), and the others
    (after them, while the apps are checked, see host_services)."""

    builds: list[str]
    checks: list[str]
    others: list[str]


def missing(needs: Needs, state: State) -> Missing:
    def lacking(packages: tuple[str, ...]) -> list[str]:
        return [package for package in packages if package not in state.packages]
    return Missing(lacking(needs.packages.builds), lacking(needs.packages.checks), lacking(needs.packages.others))


@deploy("Host base")
def host_base(apps: list[App], settings: HostSettings, state: State, needs: Needs) -> None:
    """Install what the apps' builds need, start installing the other packages, install uv,
    create the group of app users. The servers start in check_services and host_services."""
    lacking = missing(needs, state)
    # Without what Debian only recommends: a mail server (exim4, for cron and logrotate),
    # sysstat, sensors; nothing djangohost runs needs them, and they were a fifth of the packages.
    if lacking.builds:
        apt.packages(name="Install packages that builds need", packages=lacking.builds, update=True,
                     no_recommends=True)
    uploads(state)
    ops.file(name="Background steps", path=paths.BACKGROUND_TOOL, owner="root", group="root", mode="755",
             content=render("engine/djangohost-background.j2", dir=paths.BACKGROUND, lock=lock.LOCK),
             current=state.paths.get(paths.BACKGROUND_TOOL))
    ops.file(name="Safe reads of what apps control", path=paths.SAFE_TOOL, owner="root", group="root", mode="755",
             content=safe.SOURCE.read_text(), current=state.paths.get(paths.SAFE_TOOL))
    # dpkg takes half of a first deploy: the apps' users, code and virtualenvs need none of these
    # packages, and are made meanwhile; the apps' checks need only the first ones.
    if lacking.checks:
        in_background("check-packages", lacking.checks, update=not lacking.builds)
    if lacking.others:
        in_background("packages", lacking.others, update=not lacking.builds and not lacking.checks,
                      after="check-packages" if lacking.checks else None)

    # Built aside and moved into place: a directory named after its version is a whole install.
    # A wheel only: root runs no build script, whatever the host's index offers. pip runs from the
    # wheel Debian ships (python3-pip-whl): no virtualenv of its own to make (2 s of 4.7).
    ops.command(
        name=f"uv {UV_VERSION}",
        command=(f"rm -rf {paths.TOOLS}/uv-* && set -- {paths.PIP_WHEELS}/pip-*.whl && "
                 f'{settings.python} "$1/pip" install --quiet --disable-pip-version-check --no-input '
                 f"--root-user-action=ignore --no-compile --only-binary :all: --target {paths.UV}.new "
                 f"uv=={UV_VERSION} && mv {paths.UV}.new {paths.UV}"),
        needed=paths.UV not in state.paths,
        reason=f"uv {UV_VERSION} is installed",
    )

    ops.command(
        name=f"Group {settings.group}",
        command=f"groupadd --system {settings.group}",
        needed=settings.group not in state.groups,
        reason=f"group {settings.group} exists",
    )

    ops.directories(
        name="Stamps of applied reloads, homes of the build identities",
        directories=[(paths.STAMPS, "root", "root", "700"), (paths.BUILD, "root", "root", "755")],
        current=state.paths,
    )
    programs(apps, state)


def programs(apps: list[App], state: State) -> None:
    """djangohost's programs that builds and checks run: read-only to all (the build identities and
    the apps run some of them), the build tool root's alone."""
    tools = [
        ops.File(paths.BUILD_TOOL, render("app/djangohost-build.j2", build=paths.BUILD, uv=paths.UV_BIN,
                                          dependencies=paths.DEPENDENCIES, marker=paths.VENV_COMPLETE), mode="700"),
        *(ops.File(path, (TEMPLATES / template).read_text()) for path, template in (
            (paths.DEPENDENCIES, "app/dependencies.py"), (paths.HEALTH, "health/health.py"),
            (paths.PUBLISH_STATIC, "app/publish-static.py"))),
        *([ops.File(paths.MIGRATE_LOCKED, render("dbserver/migrate_locked.py.j2"))]
          if any(app.database_server for app in apps) else []),
    ]
    ops.written("djangohost's programs", tools, state.paths)


@deploy("Host services")
def check_services(state: State, needs: Needs) -> None:
    """Once the packages the apps' checks need are in: start the servers they are checked against
    (database servers, Supervisor where an app has a broker, cron)."""
    if missing(needs, state).checks:
        ops.command(name="Packages the checks need installed", command=f"{paths.BACKGROUND_TOOL} wait check-packages",
                    needed=True, reason="")
    start(needs.service_names(for_checks=True), state)


@deploy("Host services")
def host_services(state: State, needs: Needs) -> None:
    """Once the other packages are in: start the other servers (Nginx, Supervisor)."""
    if missing(needs, state).others:
        ops.command(name="Packages installed", command=f"{paths.BACKGROUND_TOOL} wait packages", needed=True, reason="")
    start(needs.service_names(for_checks=False), state)


def in_background(step: str, packages: list[str], update: bool, after: str | None = None) -> None:
    """Start installing `packages` as the background step `step` (after the step `after`: dpkg
    installs one transaction at a time); `update` the package lists first, unless an install of
    this run just did."""
    install = shlex.quote(f'{"apt-get update" if update else "true"} && {APT_INSTALL} "$@"')
    ops.command(name=f"Install {', '.join(packages)}", needed=True, reason="",
                command=(f"{paths.BACKGROUND_TOOL} start --one-per-core --run {lock.TOKEN} "
                         f"{f'--after {after} ' if after else ''}"
                         f"{step} sh -c {install} sh {shlex.join(packages)}"))


def uploads(state: State) -> None:
    """The private directory where the login user's uploads wait (see ops.file)."""
    ops.directory(
        name=f"Uploads of {state.login}",
        path=paths.UPLOADS, owner=state.login, group="root", mode="700",
        current=state.paths.get(paths.UPLOADS),
    )


def start(services: list[str], state: State) -> None:
    """Start services now, in one command; with systemd, enable them too, so that they come back
    after a reboot."""
    if not services:
        return
    if state.systemd:
        stopped = [service for service in services if service not in state.enabled or service not in state.running]
        command = f"systemctl enable --now {' '.join(stopped)}"
    else:
        # No init system (a plain container): the packages' init scripts start them.
        stopped = [service for service in services if service not in state.running]
        command = " && ".join(f"service {service} start" for service in stopped)
    ops.command(name=f"Start {', '.join(services)}", command=command, needed=bool(stopped),
                reason=f"{', '.join(services)} running")
