"""Read the HostState fact once, for every path the deploy of these apps compares against."""

from __future__ import annotations

from pyinfra import host

from deploys.components import base
from deploys.engine import lock
from deploys.model import paths
from deploys.model.inventory import App, HostSettings
from facts.git import GitMirrors
from facts.state import HostState, State


def read_state(apps: list[App], settings: HostSettings) -> State:
    """The HostState fact, with the git apps' mirrors fetched first (one more round trip). A host
    without apps (a load balancer, a database server) has nothing here to compare: no round trip."""
    if not apps:
        return State()
    git_apps = [(app.name, paths.builder(app), paths.build_home(app), app.git.ref, app.project_dir,
                 app.requirements or "") for app in apps if app.git and app.present]
    mirrors = host.get_fact(GitMirrors, apps=git_apps, program=paths.DEPENDENCIES) if git_apps else {}
    state: State = host.get_fact(
        HostState,
        safe_tool=paths.SAFE_TOOL,
        paths=[
            *paths.HOST_PATHS, lock.LOCK,
            *(path for app in apps for path in paths.app_paths(app)),
        ],
        env_files=[paths.env_file(app, staged=True) for app in apps],
        users=[name for app in apps for name in (app.name, paths.builder(app))],
        groups=[settings.group, *(app.name for app in apps)],
        packages=base.packages(apps, settings),
        databases=[app.name for app in apps if app.database == "postgresql" or not app.present],
        # An absent app's database may be either engine's: both are asked.
        mariadb=[app.name for app in apps if app.database == "mariadb" or not app.present],
        homes=[app.home for app in apps if app.present],
        guarded=[pair for app in apps for pair in paths.guarded_paths(app)],
    )
    state.mirrors = mirrors
    return state
