"""Every component of an app host, and what they need assembled: the app entry's contract, the
packages to install, the servers to run, the checks of an inventory against its host, and the one
HostState read of all the paths and probes they compare against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pyinfra import host

import facts
from deploys.components import (
    Component,
    Needs,
    Packages,
    Service,
    app,
    backups,
    base,
    broker,
    dbserver,
    firewall,
    health,
    history,
    limits,
    logs,
    mariadb,
    nginx,
    notify,
    offsite,
    postgres,
    schedule,
    supervisor,
    tls,
)
from deploys.engine import lock
from deploys.model import paths, schema
from deploys.model.inventory import App, HostSettings, InventoryError, check_apps
from facts.git import GitMirrors
from facts.state import HostState, State

COMPONENTS: tuple[Component, ...] = tuple(module.COMPONENT for module in (
    base, app, postgres, mariadb, dbserver, broker, supervisor, limits, schedule, nginx, tls, backups, offsite, logs,
    health, firewall, history, notify))

#: The database engines, by the name an app chooses them by.
DATABASES = {component.database.engine.name: component.database for component in COMPONENTS if component.database}
#: An app entry as the inventory may give it: AppEntry with every component's part and engine.
CONTRACT = schema.assemble((component.contract for component in COMPONENTS if component.contract),
                           (database.engine for database in DATABASES.values()))


def packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    """The packages of every component, each in the earliest group one asks for it in."""
    asked = [component.packages(apps, settings) for component in COMPONENTS]
    builds = _unique(package for packages in asked for package in packages.builds)
    checks = _unique(package for packages in asked for package in packages.checks if package not in builds)
    others = _unique(package for packages in asked for package in packages.others
                     if package not in builds and package not in checks)
    return Packages(tuple(builds), tuple(checks), tuple(others))


def services(apps: Sequence[App]) -> tuple[Service, ...]:
    """The servers of every component, each started before the apps' checks if one asks for that."""
    found: dict[str, Service] = {}
    for component in COMPONENTS:
        for service in component.services(apps):
            if service.name not in found or service.for_checks:
                found[service.name] = service
    return tuple(found.values())


def needs(apps: Sequence[App], settings: HostSettings) -> Needs:
    present = [app for app in apps if app.present]
    return Needs(packages(present, settings), services(present))


def watched(app: App) -> list[str]:
    """Every path of an app that its components compare against."""
    return _unique(path for component in COMPONENTS for path in component.watched(app))


def host_paths() -> list[str]:
    return _unique(path for component in COMPONENTS for path in component.host_paths)


def check_host(host_name: str, apps: list[App], state: State) -> None:
    """The inventory's apps against the host (inventory.check_apps, then each component's check);
    InventoryError names the host, the app and the field."""
    check_apps(host_name, apps, state)
    for each in apps:
        for component in COMPONENTS:
            try:
                component.check(each, state)
            except schema.Problem as problem:
                raise InventoryError(f"host {host_name}, app {each.name}, field {problem.field}: "
                                     f"{problem.message}") from None


def read_state(apps: list[App], settings: HostSettings) -> State:
    """The HostState fact, with the git apps' mirrors fetched first (one more round trip). A host
    without apps (a load balancer, a database server) has nothing here to compare: no round trip."""
    if not apps:
        return State()
    git_apps = [(app.name, paths.builder(app), paths.build_home(app), app.git.ref, app.project_dir,
                 app.requirements or "") for app in apps if app.git and app.present]
    mirrors = facts.read(host, GitMirrors, apps=git_apps, program=paths.DEPENDENCIES) if git_apps else {}
    wanted = needs(apps, settings)
    state: State = facts.read(
        host, HostState,
        paths=[*host_paths(), lock.LOCK, *(path for app in apps for path in watched(app))],
        env_files=[paths.env_file(app, staged=True) for app in apps],
        users=[name for app in apps for name in (app.name, paths.builder(app))],
        groups=[settings.group, *(app.name for app in apps)],
        packages=[*wanted.packages.builds, *wanted.packages.checks, *wanted.packages.others],
        homes=[app.home for app in apps if app.present],
        guarded=[pair for app in apps for pair in paths.guarded_paths(app)],
        safe_tool=paths.SAFE_TOOL,
        services=[(service.name, service.running) for service in wanted.services],
        probes=[probe for component in COMPONENTS if (probe := component.probe(apps))],
    )
    state.mirrors = mirrors
    return state


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
