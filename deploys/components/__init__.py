"""Components: each concern of a host is one folder here (its deploy steps and what it needs),
beside one of templates/ (every file it ships, programs included).

A component declares what it needs from a host in its module's COMPONENT, and
deploys.components.registry assembles them all: the app entry's contract (each component's part,
in its contract.py), the packages a host installs, the services it runs, the paths and probes of
the one HostState read. Nothing is listed centrally: a new kind of process or an Nginx knob is a
change inside its folder (and its registry line), and a path it compares against without
declaring it stops the run while it plans (facts.state.State.path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from deploys.model.inventory import App, HostSettings
from deploys.model.schema import Engine, Part
from facts.state import State


@dataclass(frozen=True)
class Packages:
    """Debian packages, by when the deploy needs them."""

    builds: tuple[str, ...] = ()  # before any build: Python, compilers, headers, git
    checks: tuple[str, ...] = ()  # before the apps' releases are checked: their servers
    others: tuple[str, ...] = ()  # the rest, installed while the apps are checked


@dataclass(frozen=True)
class Service:
    """A server the host runs for the apps."""

    name: str  # its systemd unit and init script
    running: str  # shell: passes while it runs, with or without systemd
    for_checks: bool = False  # started before the apps' releases are checked


def _no_packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    return Packages()


def _none(apps: Sequence[App]) -> Sequence[Service]:
    return ()


def _no_paths(app: App) -> Sequence[str]:
    return ()


def _no_probe(apps: Sequence[App]) -> str:
    return ""


def _no_check(app: App, state: State) -> None:
    return None


@dataclass(frozen=True)
class DatabaseEngine:
    """What a database engine's component brings: the engine as the contract knows it (its
    contract.py), the deploy making an app's database and its owner (taking app, state, guard),
    and the operations dropping both when an absent app is purged (each needed only if they are
    there)."""

    engine: Engine
    deploy: Callable[..., object]
    drop: Callable[[App, State], None]


@dataclass(frozen=True)
class Component:
    """What a component needs from a host, for the apps it deploys there.

    + packages: the Debian packages, by when they are needed
    + services: the servers it runs
    + watched: the paths of an app that its steps compare against (HostState reports on them)
    + host_paths: the host's paths its steps compare against
    + probe: a shell fragment of HostState's script, printing records "kind<TAB>field..." that the
      component reads back from State.records (its servers' own state: roles, accounts)
    + contract: its part of an app entry (deploys.model.schema.Part), read with App.part
    + check: an app's entry against the host, before anything runs: raises schema.Problem
    + database: a database engine it brings (DatabaseEngine)
    """

    name: str
    packages: Callable[[Sequence[App], HostSettings], Packages] = _no_packages
    services: Callable[[Sequence[App]], Sequence[Service]] = _none
    watched: Callable[[App], Sequence[str]] = _no_paths
    host_paths: Sequence[str] = ()
    probe: Callable[[Sequence[App]], str] = _no_probe
    contract: type[Part] | None = None
    check: Callable[[App, State], None] = _no_check
    database: DatabaseEngine | None = None


@dataclass(frozen=True)
class Needs:
    """What the components need from a host for its apps, assembled (deploys.components.registry)."""

    packages: Packages
    services: tuple[Service, ...]

    def service_names(self, for_checks: bool) -> list[str]:
        """The services started before the apps' releases are checked, or the others."""
        return [service.name for service in self.services if service.for_checks == for_checks]
