"""What every host needs before any app: packages, the apps' group, running Nginx and Supervisor."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt

from deploys import backups, broker, logs, mariadb, nginx, ops, paths, postgres, tls
from deploys.defaults import BUILD_TOOLS, MARIADB_PACKAGE, POSTGRESQL_PACKAGE, UV_VERSION
from deploys.inventory import App, HostSettings
from deploys.templates import render
from facts.state import SERVICES, State

# The deploy module of each engine, with its database(), database_url() and exists().
ENGINES = {"postgresql": postgres, "mariadb": mariadb}
# The database server of each engine: its Debian package and its service.
DATABASE_SERVERS = {"postgresql": (POSTGRESQL_PACKAGE, "postgresql"), "mariadb": (MARIADB_PACKAGE, "mariadb")}


def engines(apps: list[App]) -> list[str]:
    """The database engines the apps need on this host, each installed only where an app chooses it
    and keeps its database here (not on a database server, see deploys.topology)."""
    return [engine for engine in DATABASE_SERVERS
            if any(app.database == engine and not app.database_server for app in apps)]


def packages(apps: list[App], settings: HostSettings) -> list[str]:
    with_database = [DATABASE_SERVERS[engine][0] for engine in engines(apps)]
    with_git = ["git", "openssh-client"] if any(app.git for app in apps) else []
    build_tools = list(BUILD_TOOLS) if settings.build_tools else []
    return [*settings.packages, *build_tools, *nginx.PACKAGES, *logs.PACKAGES, *backups.packages(apps),
            *with_database, *with_git, *tls.packages([app for app in apps if not app.balancer]), *broker.packages(apps)]


def services(apps: list[App]) -> list[str]:
    unused = {service for engine, (_, service) in DATABASE_SERVERS.items() if engine not in engines(apps)}
    return [name for name in SERVICES if name not in unused]


@deploy("Host base")
def host_base(apps: list[App], settings: HostSettings, state: State) -> None:
    """Install the packages, create the group of app users, start Nginx, Supervisor, cron and
    the database servers the apps choose (PostgreSQL, MariaDB)."""
    missing = [package for package in packages(apps, settings) if package not in state.packages]
    if missing:
        # Without what Debian only recommends: a mail server (exim4, for cron and logrotate),
        # sysstat, sensors; nothing djangohost runs needs them, and they were a fifth of the packages.
        apt.packages(name="Install packages", packages=missing, update=True, no_recommends=True)
    if broker.PACKAGE in missing:
        # Each app has a Redis of its own; the package's Redis for the whole host is not wanted.
        ops.command(
            name="Debian's shared Redis stopped and disabled",
            command=("systemctl disable --now redis-server" if state.systemd
                     else "service redis-server stop; update-rc.d redis-server disable"),
            needed=True, reason="",
        )

    # Built aside and moved into place: a directory named after its version is a whole install.
    # A wheel only: root runs no build script, whatever the host's index offers. pip runs from the
    # wheel Debian ships (python3-pip-whl): no virtualenv of its own to make (2 s of 4.7).
    ops.command(
        name=f"uv {UV_VERSION}",
        command=(f"rm -rf {paths.TOOLS}/uv-* && set -- {paths.PIP_WHEELS}/pip-*.whl && "
                 f'{settings.python} "$1/pip" install --quiet --disable-pip-version-check --no-input '
                 f"--root-user-action=ignore --no-compile --only-binary :all: --target {paths.UV}.new "
                 f"uv=={UV_VERSION} && mv {paths.UV}.new {paths.UV}"),
        needed=paths.UV_BIN not in state.paths,
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
    uploads(state)
    if any(app.database_server for app in apps):
        ops.file(name="migrate under a lock", path=paths.MIGRATE_LOCKED, content=render("app/migrate_locked.py.j2"),
                 owner="root", group="root", mode="644", current=state.paths.get(paths.MIGRATE_LOCKED))

    for service in host.loop(services(apps)):
        start(service, state)


def uploads(state: State) -> None:
    """The private directory where the login user's uploads wait (see ops.file)."""
    ops.directory(
        name=f"Uploads of {state.login}",
        path=paths.UPLOADS, owner=state.login, group="root", mode="700",
        current=state.paths.get(paths.UPLOADS),
    )


def start(service: str, state: State) -> None:
    """Start a service now; with systemd, enable it too, so that it comes back after a reboot."""
    if state.systemd:
        needed = service not in state.enabled or service not in state.running
        command = f"systemctl enable --now {service}"
    else:
        # No init system (a plain container): the package's init script starts it.
        needed = service not in state.running
        command = f"service {service} start"
    ops.command(name=f"Start {service}", command=command, needed=needed, reason=f"{service} is running")
