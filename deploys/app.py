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
from deploys.candidate import candidate_check
from deploys.inventory import App, HostSettings
from deploys.ops import Guard, Stamp, react
from deploys.postgres import database_url
from deploys.source import archive, venv_key, venv_packages
from deploys.templates import render
from facts.state import State


@dataclass
class AppChanges:
    """What the app's Gunicorn picks up with a graceful reload (code, virtualenv, settings,
    environment, Gunicorn config): the operations and what they write."""

    ops: list[OperationMeta]
    inputs: list[str]
    # only a new master sees it
    start_script: OperationMeta
    start_content: str


def release_id(app: App, state: State) -> str:
    """The release of the source's content: the live one, or the newest on the host with the
    same content (shipped before, or rolled back from), or a new timestamp-hash name."""
    short = archive(app.source).short
    live = state.paths.get(paths.current(app))
    if live and live.kind == "link" and live.target.endswith(f"-{short}"):
        return live.target.rsplit("/", 1)[-1]
    same = sorted(release for release in state.releases.get(app.home, {}) if release.endswith(f"-{short}"))
    return same[-1] if same else f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{short}"


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
        needed=release not in state.releases.get(app.home, {}),
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
                              workers=workers(app, state), env_file=paths.env_file(app))
    gunicorn_config = config_file(app, state, paths.gunicorn_config(app), gunicorn_content)
    manage = render("app/manage.j2", app=app, env_file=paths.env_file(app),
                    current=paths.current(app), venv=paths.venv(app))
    config_file(app, state, paths.manage(app), manage, mode="750")
    start_content = render(
        "app/gunicorn-start.j2", app=app, env_file=paths.env_file(app),
        current=paths.current(app), venv=paths.venv(app), gunicorn_config=paths.gunicorn_config(app),
    )
    start_script = config_file(app, state, paths.gunicorn_start(app), start_content, mode="750")

    # Against the new release and virtualenv, before either goes live: migrations, static files,
    # then the candidate check (see deploys.health); the release remembers its virtualenv.
    with_release = f"DJANGOHOST_RELEASE={release_path} DJANGOHOST_VENV={venv_dir} {paths.manage(app)}"
    tasks = [f"{with_release} migrate --noinput"] if app.database else []
    tasks += [f"{with_release} collectstatic --noinput --verbosity 0",
              candidate_check(app, release_path, venv_dir),
              f"echo {key} > {release_path}/{paths.RELEASE_VENV}"]
    react(
        f"{app.name}: {'migrate, ' if app.database else ''}collectstatic, candidate check",
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
        ops=[release_link, venv_link, settings_file, gunicorn_config, env],
        inputs=[release, key, settings_content, gunicorn_content, env_content],
        start_script=start_script,
        start_content=start_content,
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
