"""Read the HostState fact once, for every path the deploy of these apps compares against."""

from __future__ import annotations

from pyinfra import host

from deploys import base, paths
from deploys.inventory import App, HostSettings
from deploys.source import venv_key
from facts.state import HostState, State


def read_state(apps: list[App], settings: HostSettings) -> State:
    return host.get_fact(
        HostState,
        paths=[
            *paths.HOST_PATHS,
            *(path for app in apps for path in paths.app_paths(app, venv_key(app, settings))),
        ],
        env_files=[paths.env_file(app) for app in apps],
        users=[app.name for app in apps],
        groups=[settings.group, *(app.name for app in apps)],
        packages=base.packages(apps, settings),
        databases=[app.name for app in apps if app.database],
        homes=[app.home for app in apps if app.present],
    )
