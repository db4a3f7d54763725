"""One Django app: its user, home, code release, virtualenv, settings and environment.

A new release and virtualenv are built beside the live ones; migrations and collectstatic run
against them; only when those succeeded do the `current` and `venv` links switch. A failure
anywhere before leaves the previous release serving.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys import ops, paths
from deploys.inventory import App, HostSettings
from deploys.ops import Guard, Stamp, react
from deploys.postgres import database_url
from deploys.source import archive, venv_key, venv_packages
from deploys.templates import render
from facts.state import State


@dataclass
class AppChanges:
    """What the app's Gunicorn must pick up: the operations and what they write."""

    # served after a graceful reload: code, settings, Gunicorn config
    reload: list[OperationMeta]
    reload_inputs: list[str]
    # only a new master sees them: environment, virtualenv
    restart: list[OperationMeta]
    restart_inputs: list[str]


def release_id(app: App, state: State) -> str:
    """The live release when the source is unchanged, otherwise a new timestamp-hash name."""
    short = archive(app.source).short
    live = state.paths.get(paths.current(app))
    if live and live.kind == "link" and live.target.endswith(f"-{short}"):
        return live.target.rsplit("/", 1)[-1]
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{short}"


def workers(app: App, state: State) -> int:
    return app.workers or 2 * state.cores + 1


def environment(app: App) -> dict[str, str]:
    """Every variable of the app's environment file but the generated SECRET_KEY."""
    env = {"DJANGO_SETTINGS_MODULE": "djangohost_settings", "PYTHONPATH": app.path("conf")}
    if app.database:
        env["DATABASE_URL"] = database_url(app)
    return {**env, **app.env, **app.secrets}


@deploy("Django app")
def django_app(app: App, settings: HostSettings, state: State, guard: Guard) -> AppChanges:
    """User, directories, code, virtualenv, settings, environment, migrations and static files."""
    ops.command(
        name=f"{app.name}: system user",
        command=(
            f"useradd --system --user-group --groups {settings.group} --home-dir {app.home} "
            f"--no-create-home --shell /usr/sbin/nologin {app.name}"
        ),
        needed=app.name not in state.users,
        reason=f"user {app.name} exists",
    )
    for directory, owner, group, mode in host.loop(paths.app_dirs(app)):
        ops.directory(
            name=f"{app.name}: directory {directory}",
            path=directory, owner=owner, group=group, mode=mode,
            current=state.paths.get(directory),
        )

    release = release_id(app, state)
    release_path = paths.release(app, release)
    current = state.paths.get(paths.current(app))
    unpack = ops.unpack(
        name=f"{app.name}: release of code {archive(app.source).short}",
        path=release_path,
        archive=archive(app.source).data,
        needed=not (current and current.target.endswith(release)),
    )

    key = venv_key(app, settings)
    venv_dir = paths.venv_dir(app, key)
    requirements = f"-r {release_path}/{app.requirements} " if app.requirements else ""
    packages = " ".join(shlex.quote(package) for package in venv_packages(app, settings))
    build_venv = guard.watch(ops.command(
        name=f"{app.name}: virtualenv {key}",
        command=(
            f"rm -rf {venv_dir} && {settings.python} -m venv {venv_dir} && "
            f"{venv_dir}/bin/pip install --quiet --disable-pip-version-check --no-input "
            f"{requirements}{packages} && touch {venv_dir}/{paths.VENV_COMPLETE}"
        ),
        needed=f"{venv_dir}/{paths.VENV_COMPLETE}" not in state.paths,
        reason=f"virtualenv {key} is built",
        _ignore_errors=True,
    ))

    env_content = render("app/env.j2", app=app, env=environment(app))
    env = ops.env_file(
        name=f"{app.name}: environment",
        path=paths.env_file(app),
        content=env_content,
        group=app.name,
        current=state.env_files.get(paths.env_file(app)),
        secrets=app.secrets,
    )
    settings_content = render("app/djangohost_settings.py.j2", app=app)
    settings_file = config_file(app, state, paths.settings_file(app), settings_content)
    gunicorn_content = render("app/gunicorn.conf.py.j2", app=app, current=paths.current(app),
                              workers=workers(app, state))
    gunicorn_config = config_file(app, state, paths.gunicorn_config(app), gunicorn_content)
    manage = render("app/manage.j2", app=app, env_file=paths.env_file(app),
                    current=paths.current(app), venv=paths.venv(app))
    config_file(app, state, paths.manage(app), manage, mode="750")

    # Against the new release and virtualenv, before either goes live.
    with_release = f"DJANGOHOST_RELEASE={release_path} DJANGOHOST_VENV={venv_dir} {paths.manage(app)}"
    tasks = [f"{with_release} migrate --noinput"] if app.database else []
    tasks.append(f"{with_release} collectstatic --noinput --verbosity 0")
    react(
        f"{app.name}: {'migrate and ' if app.database else ''}collectstatic",
        " && ".join(tasks),
        [Stamp.of(state, paths.stamp("release", app), release, key, settings_content, env_content)],
        [unpack, build_venv, settings_file, env],
        guard,
        risky=True,
    )

    venv_link = ops.link(
        name=f"{app.name}: live virtualenv", path=paths.venv(app), target=f"venvs/{key}",
        current=state.paths.get(paths.venv(app)),
    )
    release_link = ops.link(
        name=f"{app.name}: live release", path=paths.current(app), target=f"releases/{release}",
        current=current,
    )
    return AppChanges(
        reload=[release_link, settings_file, gunicorn_config],
        reload_inputs=[release, settings_content, gunicorn_content],
        restart=[env, venv_link],
        restart_inputs=[env_content, key],
    )


def config_file(app: App, state: State, path: str, content: str,
                mode: str = "640") -> OperationMeta:
    """A generated file of the app: root-owned, readable by the app's group only."""
    return ops.file(
        name=f"{app.name}: {path.rsplit('/', 1)[-1]}",
        path=path,
        content=content,
        owner="root",
        group=app.name,
        mode=mode,
        current=state.paths.get(path),
    )
