"""One Django app: its user, home, code release, virtualenv, settings and environment.

A new release and virtualenv are built beside the live ones; migrations and collectstatic run
against them; only when those succeeded do the `current` and `venv` links switch. A failure
anywhere before leaves the previous release serving.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys.components import Component, backups, broker, dbserver, nginx
from deploys.components.app.source import Code, archive, code, venv_key, venv_packages
from deploys.components.health.contract import HealthPart
from deploys.components.nginx.contract import NginxPart
from deploys.engine import ops
from deploys.engine.ops import UNCHANGED, Guard, Stamp, react
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App, HostSettings
from facts.git import as_user
from facts.state import State


@dataclass
class AppChanges:
    """What the app's Gunicorn picks up with a graceful reload (code, virtualenv, settings,
    environment, Gunicorn config): the operations and what they write."""

    ops: list[OperationMeta]
    inputs: list[str]  # release, virtualenv, configuration files
    config: Configuration  # its start script: only a new master sees it
    built: list[OperationMeta]  # the release's code and virtualenv
    venv_build: OperationMeta  # started in the background, waited for by checked()
    candidate: OperationMeta = UNCHANGED  # the check of what goes live, started by checked()

    @property
    def attempt(self) -> str:
        """What this run tries: its release and a digest of every input."""
        return f"{self.inputs[0]} {ops.sha256(chr(0).join(self.inputs))}"


# The work of a deploy (builds, migrations, static files, the candidate check) yields the CPU to
# the apps serving requests: on a small server it would otherwise slow their answers.
BUILD_NICE = "nice -n 10 "
# Seconds bin/gunicorn-reload waits for the new workers to take over (they have 60, see
# gunicorn.conf.py's REPLACE_WITHIN).
RELOAD_WAIT = 90


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
        env["DATABASE_URL"] = app.engine.url(app)
    env.update(broker.env(app))
    return {**env, **app.env, **app.secrets}


@deploy("Django app")
def django_app(app: App, settings: HostSettings, state: State, guard: Guard) -> AppChanges:
    """User, directories, code, virtualenv, settings and environment: what needs no server (see
    checked() for what does)."""
    home(app, settings, state)
    if app.database_server:
        dbserver.credentials(app, state, guard)
    build_identity(app, state)

    now = f"{datetime.now(UTC):%Y%m%dT%H%M%S}"
    source = code(app, state.mirrors.get(app.name))
    release = release_id(app, state, source, now)
    release_path = paths.release(app, release)
    if app.git:
        fetch = git_source(app, state, source, release, guard)
    else:
        fetch = ops.unpack(
            name=f"{app.name}: release of code {source.short}",
            path=release_path,
            archive=archive(app.source).data,
            needed=release not in state.releases.get(app.home, {}),
        )
    if app.settings_chosen:
        host.log(f"app {app.name}: settings {app.settings_module} ({app.settings_chosen}; the entry's "
                 "settings_module chooses others)", logger.info)
    venv, venv_build = virtualenv(app, settings, state, source, release_path, now, guard)
    config = configuration(app, state)
    changes = AppChanges(config.ops, [release, venv, *config.contents], config, [fetch, venv_build], venv_build)
    refused(app, state, changes, guard)
    return changes


@deploy("Django app")
def checked(app: App, state: State, changes: AppChanges, guard: Guard) -> None:
    """Once its virtualenv is built, start the migrations, static files and candidate check of
    what django_app made, which would go live (see live()); passed() waits for them."""
    release, venv = changes.inputs[:2]
    ops.finished(f"{app.name}: virtualenv {venv} built", paths.step("virtualenv", app), changes.venv_build, guard)
    changes.candidate = candidate(app, state, release, venv, changes.config, changes.built, guard)


@deploy("Django app")
def passed(app: App, changes: AppChanges, guard: Guard) -> None:
    """Wait for the candidate check checked() started: the apps' checks run side by side."""
    ops.finished(f"{app.name}: candidate check passed", paths.step("candidate", app), changes.candidate, guard)


@deploy("Live release")
def live(app: App, state: State, changes: AppChanges, guard: Guard) -> None:
    """The release and virtualenv that passed the candidate check become the live ones (called
    with the app's guard: what failed a step never goes live)."""
    release, venv = changes.inputs[:2]
    if linked(state, paths.current(app)) not in (None, release) and not changes.candidate.will_change:
        # Back to a release readied before (after a rollback): its static files are published again,
        # as the rollback published its own (Django's default storage names a file by its path alone).
        guard.watch(ops.command(name=f"{app.name}: static files of {release}",
                                command=f"{paths.release_script(app)} {release} {venv} static",
                                needed=True, reason="", _ignore_errors=True))
    venv_link = ops.link(
        name=f"{app.name}: live virtualenv", path=paths.venv(app), target=f"venvs/{venv}",
        current=state.paths.get(paths.venv(app)),
    )
    release_link = ops.link(
        name=f"{app.name}: live release", path=paths.current(app), target=f"releases/{release}",
        current=state.paths.get(paths.current(app)),
    )
    changes.ops = [release_link, venv_link, *changes.ops]


def refused(app: App, state: State, changes: AppChanges, guard: Guard) -> None:
    """Stop the app's deploy when what it would link failed its health gate before, unchanged
    (recorded by the gate, see deploys.components.health): it would fail again, and serve errors until it did."""
    record = state.paths.get(paths.stamp("refused", app))
    release = changes.inputs[0]
    failed = (record is not None and record.sha256 == ops.sha256(changes.attempt + "\n")
              and linked(state, paths.current(app)) != release)
    message = (f"djangohost: app {app.name}: release {release} failed its health gate before, with the same "
               "code, virtualenv, settings and environment; it is not linked again until one of them changes")
    guard.watch(ops.command(
        name=f"{app.name}: release not refused by an earlier health gate",
        command=f"echo {shlex.quote(message)} >&2; exit 1",
        needed=failed,
        reason=f"{release} did not fail its health gate with these inputs",
        _ignore_errors=True,
    ))


def home(app: App, settings: HostSettings, state: State) -> None:
    """The app's system user and the directories of its home."""
    ops.command(
        name=f"{app.name}: system user",
        command=(
            f"useradd --system --user-group --groups {settings.group} --home-dir {app.home} "
            f"--no-create-home --shell /usr/sbin/nologin {app.name}"
        ),
        needed=app.name not in state.users,
        reason=f"user {app.name} exists",
    )
    ops.directories(name=f"{app.name}: directories of {app.home}", directories=paths.app_dirs(app),
                    current=state.paths)


@dataclass
class Configuration:
    """What a release runs with: the staged configuration files (the operations writing them
    and their contents), and the start script, which only a new Gunicorn master reads."""

    ops: list[OperationMeta]
    contents: list[str]
    start_script: OperationMeta
    start_content: str
    release_content: str  # bin/release: what readies a release, its release commands among it


def configuration(app: App, state: State) -> Configuration:
    """The environment, settings and Gunicorn config, written to conf/next/ (live once the
    candidate check passed, see candidate()), and the app's programs in bin/."""
    env_content = render("app/env.j2", app=app, env=environment(app))
    env = ops.env_file(
        name=f"{app.name}: environment",
        path=paths.env_file(app, staged=True),
        content=env_content,
        group=app.name,
        current=state.env_files.get(paths.env_file(app, staged=True)),
        secrets=app.secrets,
        key_from=paths.env_file(app),
    )
    settings_content = render("app/djangohost_settings.py.j2", app=app, broker=broker.maxmemory(app),
                              broker_socket=broker.socket(app))
    gunicorn_content = render("app/gunicorn.conf.py.j2", app=app, current=paths.current(app),
                              workers=workers(app, state), conf=paths.conf(app),
                              reloaded=paths.gunicorn_reloaded(app))
    scripts = {"app": app, "conf": paths.conf(app), "current": paths.current(app), "venv": paths.venv(app)}
    start_content = render("app/gunicorn-start.j2", **scripts)
    release_content = release_script(app)
    programs = {
        paths.gunicorn_start(app): start_content,
        paths.manage(app): render("app/manage.j2", **scripts),
        paths.compress_static(app): render("app/compress-static.j2", app=app, static=app.path("static")),
        paths.gunicorn_reload(app): render("app/gunicorn-reload.j2", app=app, wait=RELOAD_WAIT,
                                           reloaded=paths.gunicorn_reloaded(app)),
        paths.run_script(app): render("app/run.j2", **scripts, bin=app.path("bin"), run=paths.run_script(app)),
        paths.release_script(app): release_content,
    }
    # Root-owned, for the app's group only; one operation (two round trips) for them all.
    settings_file, gunicorn_config, start_script, *_ = ops.written(f"{app.name}: configuration and programs", [
        ops.File(paths.settings_file(app, staged=True), settings_content, group=app.name, mode="640"),
        ops.File(paths.gunicorn_config(app, staged=True), gunicorn_content, group=app.name, mode="640"),
        *(ops.File(path, content, group=app.name, mode="750") for path, content in programs.items()),
    ], state.paths)
    return Configuration([settings_file, gunicorn_config, env], [settings_content, gunicorn_content, env_content],
                         start_script, start_content, release_content)


def release_script(app: App) -> str:
    """bin/release: what readies a release before it goes live (see templates/app/release.j2)."""
    if app.database_server:
        migrate = f"\"$manage\" shell --command \"import runpy; runpy.run_path('{paths.MIGRATE_LOCKED}')\""
    else:
        migrate = '"$manage" migrate --noinput'
    return render("app/release.j2", app=app, checks=app.part(HealthPart), release_script=paths.release_script(app),
                  staged=paths.conf(app, staged=True), conf=paths.conf(app), conf_files=paths.CONF_FILES,
                  collected=paths.collected_static(app), manage=paths.manage(app), run=paths.run_script(app),
                  dump=backups.take(app, '"$release"'), migrate=migrate, health=paths.HEALTH,
                  gunicorn_start=paths.gunicorn_start(app), publish=paths.PUBLISH_STATIC,
                  compress=paths.compress_static(app), marker=paths.RELEASE_VENV,
                  error_pages=app.part(NginxPart).error_pages, pages_dir=nginx.ERROR_PAGES)


def candidate(app: App, state: State, release: str, venv: str, config: Configuration,
              built: list[OperationMeta], guard: Guard) -> OperationMeta:
    """Ready the new release with bin/release against the new virtualenv and staged configuration,
    before any goes live: migrations, static files, release commands, the candidate check. A
    refused release leaves the live configuration as it was."""
    steps = "migrate, collectstatic" if app.database else "collectstatic"
    if app.release_commands:
        steps += ", release commands"
    return react(
        f"{app.name}: {steps}, candidate check",
        f"{BUILD_NICE}{paths.release_script(app)} {release} {venv}",
        [Stamp.of(state, paths.stamp("release", app), release, venv, *config.contents, config.release_content)],
        [*built, *config.ops],
        guard,
        risky=True,
        step=paths.step("candidate", app),
    )


def build_identity(app: App, state: State) -> None:
    """The user that fetches the app's code and builds its virtualenvs (paths.builder), in a
    home of its own that neither the app nor another app's builder can enter."""
    builder = paths.builder(app)
    ops.command(
        name=f"{app.name}: build user {builder}",
        command=(f"useradd --system --user-group --home-dir {paths.build_home(app)} --no-create-home "
                 f"--shell /usr/sbin/nologin {builder}"),
        needed=builder not in state.users,
        reason=f"user {builder} exists",
    )
    ops.directory(name=f"{app.name}: build home", path=paths.build_home(app), owner=builder, group=builder,
                  mode="700", current=state.paths.get(paths.build_home(app)))
    # Kept by djangohost before there was a build identity, where the app's user could write.
    for path in host.loop(paths.app_owned_mirror(app)):
        ops.command(name=f"{app.name}: {path} removed", command=f"rm -rf {path}", needed=path in state.paths,
                    reason=f"{path} does not exist")


def virtualenv(app: App, settings: HostSettings, state: State, source: Code, release_path: str, now: str,
               guard: Guard) -> tuple[str, OperationMeta]:
    """The virtualenv for the release's dependencies (built unless one exists for them): its
    name and the operation starting its build in the background (see checked()).

    The build identity builds it with uv, from its own copy of the release (djangohost-build):
    what uv runs (setup.py, build backends) runs as that user. Then root takes it: root-owned,
    read-only to the app."""
    key = None if source.dependencies is None else venv_key(settings.python, source.packages(app, settings),
                                                             source.dependencies)
    venv = venv_name(app, state, key, now)
    needed = venv not in state.venvs.get(app.home, {})
    live = paths.current(app) if paths.current(app) in state.paths else None
    for name, content in source.files.items() if needed else ():
        ops.diff(f"{app.name}: {name}", content.decode(errors="replace"), live and f"{live}/{name}")
    arguments = ["--python", settings.python, "--project-dir", app.project_dir,
                 *(["--requirements", app.requirements] if app.requirements else []),
                 *(word for package in venv_packages(app, settings) for word in ("--add", package)),
                 *(["--build-tools"] if settings.build_tools else [])]
    build = shlex.join([paths.BUILD_TOOL, app.name, release_path, paths.venv_dir(app, venv), *arguments])
    started = guard.watch(ops.command(
        name=f"{app.name}: virtualenv {venv}",
        command=ops.in_background(paths.step("virtualenv", app), f"{build} >/dev/null"),
        needed=needed,
        reason=f"virtualenv {venv} is built",
        _ignore_errors=True,
    ))
    return venv, started


def git_source(app: App, state: State, source: Code, release: str, guard: Guard) -> OperationMeta:
    """The app's mirror of its repository (fetched by its build identity, with its deploy key)
    and the release exported from the commit its ref resolves to."""
    assert app.git is not None
    builder, build_home = paths.builder(app), paths.build_home(app)
    # The identity's own files, made by the identity: a hostile build may have relinked any path of
    # its home, through which a write of root's would land on a file of root's choosing.
    ops.own_directory(name=f"{app.name}: mirror directory", user=builder, home=build_home, path=paths.mirror(app),
                      mode="700", current=state.paths.get(paths.mirror(app)))
    if app.git.deploy_key:
        ops.own_file(name=f"{app.name}: deploy key", user=builder, home=build_home, path=paths.deploy_key(app),
                     content=app.git.deploy_key.read_text(), mode="400", current=state.paths.get(paths.deploy_key(app)))
    else:
        ops.command(name=f"{app.name}: no deploy key", command=as_user(builder, build_home,
                                                                         f"rm -f {paths.deploy_key(app)}"),
                    needed=paths.deploy_key(app) in state.paths, reason="there is no deploy key")
    # Host keys are trusted on first use and kept with the mirror.
    ssh = (f"ssh -o IdentitiesOnly=yes -o BatchMode=yes -i {paths.deploy_key(app)} "
           f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={paths.mirror(app)}/known_hosts")
    # Fetched again by the deploy when it could not be while planning: after a new deploy key
    # is in place, say; a failure then stops this app only.
    guard.watch(ops.command(
        name=f"{app.name}: fetch {app.git.url}",
        command=as_user(builder, build_home, "sh -c " + shlex.quote(
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
    unmarked = " ".join(f"--exclude={marker}" for marker in paths.RELEASE_MARKERS)
    git = as_user(builder, build_home, f"git --git-dir={paths.mirror(app)}")
    return guard.watch(ops.command(
        name=f"{app.name}: release of {app.git.ref} at {source.short or '(fetched on the host)'}",
        command=(
            f"rm -rf {building} && mkdir -p {building} && "
            f"commit=$({git} rev-parse --verify {shlex.quote((source.commit or app.git.ref) + '^{commit}')}) && "
            f"{git} archive --format=tar \"$commit\" | tar -x -C {building} --no-same-owner {unmarked} && "
            f"echo \"$commit\" > {building}/{paths.RELEASE_COMMIT} && "
            f"rm -rf {release_path} && mv {building} {release_path}"
        ),
        needed=release not in state.releases.get(app.home, {}),
        reason=f"{release_path} is already deployed",
        _ignore_errors=True,
    ))


def watched(app: App) -> Sequence[str]:
    """The app's paths that its deploy compares against."""
    return [*(path for path, *_ in paths.app_dirs(app)), paths.settings_file(app, staged=True),
            paths.gunicorn_config(app, staged=True), paths.gunicorn_start(app), paths.manage(app),
            paths.compress_static(app), paths.gunicorn_reload(app), paths.run_script(app), paths.release_script(app),
            paths.current(app), paths.venv(app), paths.build_home(app), *paths.app_owned_mirror(app),
            app.socket, paths.stamp("release", app), paths.stamp("rollback", app)]


COMPONENT = Component("app", watched=watched)
