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

from deploys import base, ops, paths
from deploys.candidate import candidate_check
from deploys.inventory import App, HostSettings
from deploys.ops import Guard, Stamp, react
from deploys.source import Code, archive, code, venv_key, venv_key_shell, venv_packages
from deploys.templates import render
from facts.git import as_user
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


def linked(state: State, link: str) -> str | None:
    """The name of the release or virtualenv the link `link` points at, if it is a link."""
    current = state.paths.get(link)
    return current.target.rsplit("/", 1)[-1] if current and current.kind == "link" else None


def release_id(app: App, state: State, code: Code, now: str) -> str:
    """The release of the code: the live one, or the newest on the host with the same code
    (shipped before, or rolled back from), or a new timestamp-code name."""
    releases = state.releases.get(app.home, {})
    commits = state.commits.get(app.home, {})

    def same(release: str) -> bool:
        if code.commit:
            return commits.get(release) == code.commit
        return code.short is not None and release.endswith(f"-{code.short}")

    live = linked(state, paths.current(app))
    if live and same(live):
        return live
    matching = sorted(release for release in releases if same(release))
    return matching[-1] if matching else f"{now}-{code.short or 'git'}"


def venv_name(app: App, state: State, key: str | None, now: str) -> str:
    """The virtualenv for `key`: the live one, or another built for it before, or a new one
    named after it (named by the time when the key is known only on the host, see Code)."""
    if key is None:
        return f"{now}-git"
    built = {name for name, built_key in state.venvs.get(app.home, {}).items() if built_key == key}
    live = linked(state, paths.venv(app))
    if live in built:
        return live
    return key if key in built else min(built, default=key)


def workers(app: App, state: State) -> int:
    return app.workers or 2 * state.cores + 1


def environment(app: App) -> dict[str, str]:
    """Every variable of the app's environment file but the generated SECRET_KEY."""
    env = {"DJANGO_SETTINGS_MODULE": "djangohost_settings", "PYTHONPATH": app.path("conf")}
    if app.database:
        env["DATABASE_URL"] = base.ENGINES[app.database].database_url(app)
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

    now = f"{datetime.now(UTC):%Y%m%dT%H%M%S}"
    source = code(app, state.mirrors.get(app.name))
    release = release_id(app, state, source, now)
    release_path = paths.release(app, release)
    current = state.paths.get(paths.current(app))
    if app.git:
        fetch = git_source(app, state, source, release, guard)
    else:
        fetch = ops.unpack(
            name=f"{app.name}: release of code {source.short}",
            path=release_path,
            archive=archive(app.source).data,
            needed=release not in state.releases.get(app.home, {}),
        )

    venv, venv_dir, build_venv = virtualenv(app, settings, state, source, release_path, now, guard)

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
              f"echo {venv} > {release_path}/{paths.RELEASE_VENV}"]
    react(
        f"{app.name}: {'migrate, ' if app.database else ''}collectstatic, candidate check",
        " && ".join(tasks),
        [Stamp.of(state, paths.stamp("release", app), release, venv, settings_content, env_content)],
        [fetch, build_venv, settings_file, env],
        guard,
        risky=True,
    )

    venv_link = ops.link(
        name=f"{app.name}: live virtualenv", path=paths.venv(app), target=f"venvs/{venv}",
        current=state.paths.get(paths.venv(app)),
    )
    release_link = ops.link(
        name=f"{app.name}: live release", path=paths.current(app), target=f"releases/{release}",
        current=current,
    )
    return AppChanges(
        ops=[release_link, venv_link, settings_file, gunicorn_config, env],
        inputs=[release, venv, settings_content, gunicorn_content, env_content],
        start_script=start_script,
        start_content=start_content,
    )


def virtualenv(app: App, settings: HostSettings, state: State, source: Code, release_path: str, now: str,
               guard: Guard) -> tuple[str, str, OperationMeta]:
    """The virtualenv for the release's requirements (built unless one exists for them): its
    name, its directory and the operation building it."""
    packages = venv_packages(app, settings)
    if source.requirements_sha256 is None:  # in the release once it is fetched, on the host
        requirements = app.requirements and shlex.quote(f"{release_path}/{app.requirements}")
        key = None
        key_text = venv_key_shell(settings.python, packages, requirements)
        install = f"$([ -f {requirements} ] && echo -r {requirements}) " if requirements else ""
    else:
        key = key_text = venv_key(settings.python, packages, source.requirements_sha256)
        install = (f"-r {shlex.quote(f'{release_path}/{app.requirements}')} "
                   if source.requirements_sha256 else "")
    venv = venv_name(app, state, key, now)
    venv_dir = paths.venv_dir(app, venv)
    quoted_packages = " ".join(shlex.quote(package) for package in packages)
    pip = f"{venv_dir}/bin/pip install --quiet --disable-pip-version-check --no-input {install}{quoted_packages}"
    # pip's own reason comes first (an unavailable version, a Python too old, a failed build).
    refused = (f"echo \"djangohost: app {app.name}: pip cannot install its requirements with "
               f"$({settings.python} --version 2>&1); pip's reason is above\" >&2; exit 1")
    build = guard.watch(ops.command(
        name=f"{app.name}: virtualenv {venv}",
        command=(f"rm -rf {venv_dir} && {settings.python} -m venv {venv_dir} && {{ {pip} || {{ {refused}; }}; }} "
                 f"&& echo {key_text} > {venv_dir}/{paths.VENV_COMPLETE}"),
        needed=venv not in state.venvs.get(app.home, {}),
        reason=f"virtualenv {venv} is built",
        _ignore_errors=True,
    ))
    return venv, venv_dir, build


def git_source(app: App, state: State, source: Code, release: str, guard: Guard) -> OperationMeta:
    """The app's mirror of its repository (fetched as the app's user, with its deploy key) and
    the release exported from the commit its ref resolves to."""
    assert app.git is not None
    ops.directory(name=f"{app.name}: mirror directory", path=paths.mirror(app), owner=app.name,
                  group=app.name, mode="700", current=state.paths.get(paths.mirror(app)))
    if app.git.deploy_key:
        ops.file(name=f"{app.name}: deploy key", path=paths.deploy_key(app),
                 content=app.git.deploy_key.read_text(), owner=app.name, group=app.name, mode="400",
                 current=state.paths.get(paths.deploy_key(app)), secret=True)
    else:
        ops.absent(name=f"{app.name}: no deploy key", path=paths.deploy_key(app),
                   current=state.paths.get(paths.deploy_key(app)))
    # Host keys are trusted on first use and kept with the mirror.
    ssh = (f"ssh -o IdentitiesOnly=yes -o BatchMode=yes -i {paths.deploy_key(app)} "
           f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={paths.mirror(app)}/known_hosts")
    # Fetched again by the deploy when it could not be while planning: after a new deploy key
    # is in place, say; a failure then stops this app only.
    guard.watch(ops.command(
        name=f"{app.name}: fetch {app.git.url}",
        command=as_user(app.name, app.home, "sh -c " + shlex.quote(
            'cd "$1" && { [ -f HEAD ] || git init --quiet --bare .; } && git config core.sshCommand "$2" && '
            '{ git remote set-url origin "$3" 2>/dev/null || git remote add --mirror=fetch origin "$3"; } && '
            'git fetch --quiet --prune origin'
        ) + " sh " + " ".join(shlex.quote(arg) for arg in (paths.mirror(app), ssh, app.git.url))),
        needed=source.commit is None,
        reason=f"fetched {app.git.ref} at {source.short}",
        _ignore_errors=True,
    ))
    release_path = paths.release(app, release)
    building = f"{release_path}.djangohost-new"
    git = as_user(app.name, app.home, f"git --git-dir={paths.mirror(app)}")
    return guard.watch(ops.command(
        name=f"{app.name}: release of {app.git.ref} at {source.short or '(fetched on the host)'}",
        command=(
            f"rm -rf {building} && mkdir -p {building} && "
            f"commit=$({git} rev-parse --verify {shlex.quote((source.commit or app.git.ref) + '^{commit}')}) && "
            f"{git} archive --format=tar \"$commit\" | tar -x -C {building} --no-same-owner && "
            f"echo \"$commit\" > {building}/{paths.RELEASE_COMMIT} && "
            f"rm -rf {release_path} && mv {building} {release_path}"
        ),
        needed=release not in state.releases.get(app.home, {}),
        reason=f"{release_path} is already deployed",
        _ignore_errors=True,
    ))


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
