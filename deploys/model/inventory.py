"""Read, validate and resolve every app entry of every host.

Validation (against the contract, deploys.model.schema) runs over the whole inventory before any
operation is prepared, so a bad entry on one host stops the run on all hosts, with one message
naming every problem: the host, the app, the field and why.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar, cast

from pydantic import ValidationError
from pyinfra.api.exceptions import PyinfraError

from deploys.engine import safe
from deploys.model import defaults, schema
from deploys.model.programs import dependencies

# os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings.production") in a wsgi.py
SETTINGS_DEFAULT_RE = re.compile(r"""["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][\w.]*)["']""")
RELATIVE_RE = schema.RELATIVE_RE
# The modules of a settings package a production server runs with, in order of preference, and those
# it does not.
PRODUCTION_SETTINGS = ("production", "prod", "live")
DEVELOPMENT_SETTINGS = ("dev", "develop", "development", "local", "test", "tests", "testing", "ci")
# A settings module that installs Channels or Daphne: "channels" or 'daphne' as a string of its own.
ASGI_APPS_RE = re.compile(r"""["'](channels|daphne)["']""")
# A settings module that configures Channels' layer itself.
CHANNEL_LAYERS_RE = re.compile(r"^CHANNEL_LAYERS\s*=", re.M)
# Seconds between two scheduled backups, by `at`.
BACKUP_AT = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}


P = TypeVar("P", bound=schema.Part)


class InventoryError(PyinfraError):
    """A host's data breaks the inventory contract."""


@dataclass(frozen=True)
class HostSettings:
    """Host-level settings, defaults from deploys.model.defaults."""

    root: str
    group: str
    python: str
    gunicorn_version: str
    packages: tuple[str, ...]
    database_driver: str
    mariadb_driver: str
    keep_releases: int
    backup: schema.BackupEntry = schema.BackupEntry()  # the host's djangohost_backup
    logs: schema.LogsEntry = schema.LogsEntry()  # the host's djangohost_logs
    notify: schema.NotifyEntry = schema.NotifyEntry()  # the host's djangohost_notify
    build_tools: bool = False  # compilers for requirements without wheels


@dataclass(frozen=True)
class GitSource:
    """An app's code in a git repository, fetched on the host by the app's user."""

    url: str
    ref: str  # a branch, tag or commit
    deploy_key: Path | None = None  # a private key on the machine running pyinfra


@dataclass(frozen=True)
class Tls:
    """How an app's HTTPS certificate is had (see deploys.model.defaults)."""

    mode: str  # provided, self-signed or acme
    cert: Path | None = None  # provided
    key: Path | None = None  # provided
    email: str = ""  # acme
    directory: str = defaults.ACME_DIRECTORY  # acme
    hsts_max_age: int = defaults.HSTS_MAX_AGE


@dataclass(frozen=True)
class Offsite:
    """Where restic copies an app's backups off the host (deploys.components.offsite)."""

    repository: str  # the app's own: the inventory's base repository + /<app>
    check: str  # five cron fields: when restic check reads it
    password: str | None = None  # None: generated on the host once (and lost with it)
    sftp_key: Path | None = None  # a private key on the machine running pyinfra
    known_hosts: str | None = None  # the storage host's pinned key line; None: accepted on first use
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    @property
    def kind(self) -> str:
        """local, sftp or s3."""
        return self.repository.split(":", 1)[0] if self.repository[0] != "/" else "local"


@dataclass(frozen=True)
class Backup:
    """When an app's backups are taken and how many are kept (see defaults.BACKUP)."""

    cron: str | None  # five cron fields; None: no scheduled backups
    period: int  # seconds between two scheduled backups; the status view warns past it
    keep_daily: int
    keep_weekly: int
    keep_migrations: int
    media: bool
    age_recipient: str | None = None  # pulled backups are encrypted to it
    offsite: Offsite | None = None  # restic copies its backups off the host


@dataclass(frozen=True)
class DatabaseServer:
    """The inventory host that keeps an app's database, for an app server without the db role."""

    host: str  # its name in the inventory
    address: str  # its private address, where the app connects


@dataclass(frozen=True)
class Process:
    """A long-running process of an app beside its Gunicorn: Supervisor's program <app>-<name>."""

    name: str
    command: str
    stop_wait: int = defaults.PROCESS_STOP_WAIT
    unique: bool = False  # on the app's primary server only (deploys.model.topology)


@dataclass(frozen=True)
class App:
    """One validated app entry, with every default resolved and every path named."""

    name: str
    domains: tuple[str, ...]
    source: Path  # a local project directory; Path() when `git` is set
    wsgi_module: str  # "" for an ASGI app whose entry names none
    settings_module: str
    requirements: str | None  # the inventory's; None: found in the source (templates/app/dependencies.py)
    workers: int | None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    database: str | None = defaults.DATABASE_ENGINE  # its engine's name (App.engine), None without
    database_server: DatabaseServer | None = None  # None: the database is on the app's host (deploys.model.topology)
    media: bool = True  # False: it keeps no uploads on its servers
    primary_server: str | None = None  # the entry's `primary`: where its schedule and unique processes run
    servers: tuple[str, ...] | None = None  # the entry's `servers`: the app servers that run it; None: every one
    primary: bool = True  # whether this host is that server (deploys.model.topology)
    balancer: str | None = None  # the load balancer's private address, the one client of its Nginx site
    present: bool = True  # False: "state": "absent", the app is removed
    purge: bool = False  # with absent: its database, role, files and user go too
    root: str = defaults.ROOT
    git: GitSource | None = None
    tls: Tls | None = None
    backup: Backup | None = None  # None only for a removed app
    processes: tuple[Process, ...] = ()
    project_dir: str = ""  # where manage.py is, relative to the source's root
    release_commands: tuple[str, ...] = ()
    settings_chosen: str = ""  # how settings_module was chosen, when the entry did not name it
    server: str = defaults.SERVER  # wsgi or asgi
    asgi_module: str = ""  # with asgi
    # Its settings install Channels with no layer of their own (local sources; see channels_settings).
    needs_channel_layer: bool = False
    entry: schema.AppEntry | None = None  # the validated entry, with every component's part

    def part(self, kind: type[P]) -> P:
        """A component's part of the app's entry (deploys/components/<name>/contract.py): its fields
        as the entry gives them, or its defaults."""
        return self.entry if isinstance(self.entry, kind) else kind()

    @property
    def engines(self) -> Mapping[str, schema.Engine]:
        """The database engines of the contract its entry was checked against, by name."""
        return type(self.entry).ENGINES if self.entry is not None else {}

    @property
    def engine(self) -> schema.Engine:
        """Its database's engine, as the component bringing it declared it (the app has a database)."""
        if self.database is None or self.database not in self.engines:
            raise LookupError(f"{self.name}: no database engine {self.database} in the contract")
        return self.engines[self.database]

    def on_several_servers(self) -> list[tuple[str, str]]:
        """Why the app cannot run on several app servers, by its parts: (field, why) for each."""
        parts = schema.parts_of(type(self.entry)) if self.entry is not None else []
        return [problem for part in parts if (problem := part.on_several_servers(cast(schema.Part, self.entry)))]

    @property
    def home(self) -> str:
        return f"{self.root}/{self.name}"

    def path(self, *parts: str) -> str:
        """A path inside the app's home: app.path("conf", "env")."""
        return str(PurePosixPath(self.home, *parts))

    @property
    def origins(self) -> tuple[str, ...]:
        """Where visitors reach the app: https://domain with TLS, http:// without."""
        return tuple(f"{'https' if self.tls else 'http'}://{domain}" for domain in self.domains)

    @property
    def checked_origins(self) -> tuple[str, ...]:
        """Where this host's own checks ask the app through its Nginx: its origins, or behind a load
        balancer holding its certificate, plain HTTP that says it came over https (facts.health)."""
        return tuple(f"lb-{origin}" if self.balancer and self.tls else origin for origin in self.origins)

    @property
    def project(self) -> Path:
        """The local directory of manage.py (local sources)."""
        return self.source / self.project_dir

    def in_release(self, release: str) -> str:
        """The directory of manage.py in a release (or the `current` link) at `release`."""
        return f"{release}/{self.project_dir}" if self.project_dir else release

    @property
    def asgi(self) -> bool:
        return self.server == "asgi"

    @property
    def application(self) -> str:
        """What Gunicorn loads: module:application of the ASGI or the WSGI module."""
        return f"{self.asgi_module if self.asgi else self.wsgi_module}:application"

    @property
    def socket(self) -> str:
        return self.path("run", "gunicorn.sock")

    def program(self, process: str = "web") -> str:
        """The Supervisor program of one of the app's processes: web, redis or one of `processes`."""
        return self.name if process == "web" else f"{self.name}-{process}"

    @property
    def code_programs(self) -> tuple[str, ...]:
        """The Supervisor programs that run the app's code: its Gunicorn and its processes."""
        return (self.program(), *(self.program(process.name) for process in self.processes))


def host_settings(host_name: str, data: Any) -> HostSettings:
    """Host-level settings from host data (a mapping or pyinfra's HostData), each checked for the
    form it must have: they end up in commands run as root."""
    raw = {key: data.get(key) for key in schema.HostSettingsEntry.model_fields if data.get(key) is not None}
    try:
        entry = schema.HostSettingsEntry.model_validate(raw)
    except ValidationError as invalid:
        raise InventoryError("\n".join(_lines(f"host {host_name}", invalid, schema.HostSettingsEntry))) from None
    return HostSettings(
        root=entry.djangohost_root.rstrip("/"),
        group=entry.djangohost_group,
        python=entry.djangohost_python,
        gunicorn_version=entry.djangohost_gunicorn_version,
        packages=tuple(entry.djangohost_packages),
        database_driver=entry.djangohost_database_driver,
        mariadb_driver=entry.djangohost_mariadb_driver,
        keep_releases=entry.djangohost_keep_releases,
        backup=entry.djangohost_backup,
        logs=entry.djangohost_logs,
        notify=entry.djangohost_notify,
        build_tools=entry.djangohost_build_tools,
    )


def _lines(where: str, invalid: ValidationError, model: type[schema.Model]) -> list[str]:
    """pydantic's errors about a value of `model` as djangohost reports them: `where, field F: why`,
    one per field."""
    forms = schema.forms(model)
    lines: dict[str, str] = {}
    for error in invalid.errors():
        field, *inner = [str(part) for part in error["loc"]] or ["?"]
        if field in lines:
            continue
        if error["type"] == "extra_forbidden" and not inner:
            message = f"unknown field (known fields: {', '.join(sorted(model.model_fields))})"
        elif inner and error["type"] == "extra_forbidden":
            message = f"unknown key {inner[0]!r}"
        elif inner:
            message = f"{inner[0]}: {schema.reason(error, inner[0], forms)}"
        else:
            message = schema.reason(error, field, forms)
        lines[field] = f"{where}, field {field}: {message}"
    return list(lines.values())


def load_inventory(hosts: Iterable[Any], contract: type[schema.AppEntry]) -> dict[str, list[App]]:
    """Validate the settings and `apps` (entries of `contract`) of every host, and the `app`
    selection (`--data app=hello,goodbye`); return the apps by host name, or raise InventoryError
    naming every problem."""
    hosts = list(hosts)
    apps: dict[str, list[App]] = {}
    problems = []
    for host in hosts:
        try:
            apps[host.name] = load_apps(host.name, host.data, contract)
        except InventoryError as error:
            problems.append(str(error))
    if problems:
        raise InventoryError("\n".join(problems))
    for host in hosts:
        wanted = selection(host.data)
        if wanted is None:
            continue
        known = {app.name for host_apps in apps.values() for app in host_apps}
        unknown = sorted(wanted - known)
        if unknown:
            raise InventoryError(f"--data app: no app named {safe.printable(', '.join(unknown))} in the inventory "
                                 f"(apps: {', '.join(sorted(known)) or 'none'})")
    return apps


def selection(data: Any) -> set[str] | None:
    """The app names of `--data app=hello,goodbye`, or None when every app is deployed."""
    value = data.get("app")
    if value in (None, ""):
        return None
    names = value if isinstance(value, list) else str(value).split(",")
    return {str(name).strip() for name in names if str(name).strip()}


def selected(apps: list[App], data: Any) -> list[App]:
    """The apps a run touches: those named by `--data app=...`, or all."""
    wanted = selection(data)
    return [app for app in apps if wanted is None or app.name in wanted]


def load_apps(host_name: str, data: Any, contract: type[schema.AppEntry]) -> list[App]:
    """Validate and resolve the settings and `apps` list (entries of `contract`, see
    deploys.components.registry.CONTRACT) of one host's data; every problem found is in the
    InventoryError raised."""
    settings = host_settings(host_name, data)
    raw_apps = data.get("apps") or []
    if not isinstance(raw_apps, list):
        raise InventoryError(f"host {host_name}: `apps` must be a list of app entries")

    apps: list[App] = []
    problems: list[str] = []
    for index, raw in enumerate(raw_apps):
        label = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else f"#{index + 1}"
        where = f"host {host_name}, app {label}"
        try:
            app = _load_app(where, raw, settings, contract)
        except InventoryError as error:
            problems.append(str(error))
            continue
        problems += [f"{where}, field {field}: {message}" for field, message in _clashes(app, apps)]
        apps.append(app)
    if problems:
        raise InventoryError("\n".join(problems))
    return apps


def _clashes(app: App, others: list[App]) -> list[tuple[str, str]]:
    """What `app` takes that an app before it on the host has: its name, a domain, its source."""
    found = []
    if any(other.name == app.name for other in others):
        found.append(("name", "duplicate app name"))
    for other in others:
        if app.present and other.present and not (app.git or other.git) and other.source != app.source and (
                other.source in app.source.parents or app.source in other.source.parents):
            outer, inner = (other, app) if other.source in app.source.parents else (app, other)
            found.append(("source", f"{inner.source} is inside the source of app {outer.name}, which would ship "
                                    f"{inner.name}'s project as part of its own"))
        for domain in set(app.domains) & set(other.domains):
            found.append(("domains", f"{domain} is already used by app {other.name}"))
    return found


def _load_app(where: str, raw: Any, settings: HostSettings, contract: type[schema.AppEntry]) -> App:
    """One entry, checked against the contract, then resolved."""
    if not isinstance(raw, dict):
        raise InventoryError(f"{where}: an app entry must be a dict, got {type(raw).__name__}")
    try:
        entry = contract.model_validate(raw)
        return _resolve(entry, settings)
    except ValidationError as invalid:
        raise InventoryError("\n".join(_lines(where, invalid, contract))) from None
    except schema.Problem as problem:
        raise InventoryError(f"{where}, field {problem.field}: {problem.message}") from None


def _resolve(entry: schema.AppEntry, settings: HostSettings) -> App:
    """The App an entry describes, its defaults found in its source and the host's settings."""
    database = None if entry.database is False else (
        defaults.DATABASE_ENGINE if entry.database is True else entry.database.engine)  # type: ignore[union-attr]
    if entry.state == "absent":
        return App(name=entry.name, domains=(), source=Path(), wsgi_module="", settings_module="",
                   requirements=None, workers=None, database=database, present=False, purge=entry.purge,
                   root=settings.root, entry=entry)
    git = source = None
    project_dir = (entry.project_dir or "").strip("/")
    if isinstance(entry.source, schema.GitSourceEntry):
        key = entry.source.deploy_key
        git = GitSource(entry.source.git, entry.source.ref, Path(key).expanduser().resolve() if key else None)
        source = Path()
    else:
        source = Path(str(entry.source)).resolve()
        project = (source / project_dir).resolve()
        if not project.is_relative_to(source):
            raise schema.Problem("project_dir", f"{project_dir!r} is not inside {source}")
        if not (project / "manage.py").is_file():
            field = "project_dir" if project_dir else "source"
            raise schema.Problem(field, f"{project} is not a Django project directory (no manage.py)"
                                 + ("" if project_dir else "; if manage.py is in a subdirectory, name it in "
                                                          "project_dir"))
    project = source / project_dir
    if entry.server == "asgi":
        wsgi_module = entry.wsgi_module or ""
        asgi_module = entry.asgi_module or _guessed("asgi_module", default_module(project, "asgi"))
    else:
        if entry.wsgi_module is None and git is None:
            only_asgi(project)
        wsgi_module = entry.wsgi_module or _guessed("wsgi_module", default_module(project, "wsgi"))
        asgi_module = ""
    settings_chosen = ""
    settings_module = entry.settings_module
    if settings_module is None:
        found, settings_chosen = default_settings_module(project, asgi_module or wsgi_module)
        settings_module = _guessed("settings_module", (found, settings_chosen))
    needs_channel_layer = git is None and channels_settings(project, settings_module, entry.server)
    requirements = _requirements(entry.requirements, source, git is not None)
    if git is None:
        try:
            dependencies.find(dependencies.from_directory(str(source)), project_dir, requirements)
        except dependencies.Refused as refused:
            raise schema.Problem("requirements", safe.printable(str(refused))) from None
    return App(
        name=entry.name,
        domains=tuple(entry.domains or ()),
        source=source,
        wsgi_module=wsgi_module,
        settings_module=settings_module,
        requirements=requirements,
        project_dir=project_dir,
        release_commands=tuple(entry.release_commands),
        settings_chosen=settings_chosen,
        workers=entry.workers,
        env={name: str(value) for name, value in entry.env.items()},
        secrets={name: str(value) for name, value in entry.secrets.items()},
        database=database,
        root=settings.root,
        git=git,
        tls=_tls(entry.tls),
        backup=_backup(entry.backup, settings.backup, entry.name),
        processes=tuple(Process(name, process.command, process.stop_wait, process.unique)  # type: ignore[union-attr]
                        for name, process in entry.processes.items()),
        media=entry.media,
        primary_server=entry.primary,
        servers=tuple(entry.servers) if entry.servers is not None else None,
        entry=entry,
        server=entry.server,
        asgi_module=asgi_module,
        needs_channel_layer=needs_channel_layer,
    )


def _guessed(field_name: str, guess: tuple[str | None, str]) -> str:
    found, seen = guess
    if found is None:
        raise schema.Problem(field_name, f"cannot be guessed (found: {seen}); set it")
    return found


def _requirements(requirements: str | None, source: Path, git: bool) -> str | None:
    """The requirements file the entry names, checked (a git source's at the deployed commit);
    None: found in the source."""
    if requirements is None:
        return None
    if not RELATIVE_RE.fullmatch(requirements):
        raise schema.Problem("requirements", f"{requirements!r} must be a path inside the source (letters, digits, "
                                             ". _ / + - only)")
    if not git and (not (source / requirements).resolve().is_relative_to(source)
                    or not (source / requirements).is_file()):
        raise schema.Problem("requirements", f"{requirements!r} is not a file inside {source}")
    return requirements


def _tls(entry: schema.TlsEntry | None) -> Tls | None:
    if entry is None:
        return None
    def path(value: str | None) -> Path | None:
        return Path(value).expanduser().resolve() if value else None
    return Tls(entry.mode, cert=path(entry.cert), key=path(entry.key), email=entry.email or "",
               directory=entry.directory or defaults.ACME_DIRECTORY, hsts_max_age=entry.hsts_max_age)


def _backup(entry: bool | schema.BackupEntry, host: schema.BackupEntry, name: str) -> Backup:
    """The app's `backup` entry over the host's djangohost_backup over defaults.BACKUP, key by key."""
    fields: dict[str, Any] = dict(defaults.BACKUP)
    offsite: dict[str, Any] | None = {}
    for layer in (host, entry if isinstance(entry, schema.BackupEntry) else None):
        if layer is None:
            continue
        given = layer.model_dump(exclude_none=True)
        if "cron" in given:
            fields.pop("at", None)
        if isinstance(given.get("offsite"), bool):
            offsite = {} if given.pop("offsite") else None
        elif "offsite" in given:
            if layer is host and "password" in given["offsite"]:
                raise schema.Problem("djangohost_backup", "offsite: password: each app's repository has a password "
                                                          "of its own: give it in the app's backup offsite")
            offsite = {**(offsite or {}), **given.pop("offsite")}
        fields.update(given)
    cron = None if entry is False else fields.get("cron") or schema.cron_at(fields["at"], name)
    return Backup(cron=cron, period=_period(cron), keep_daily=fields["keep_daily"],
                  keep_weekly=fields["keep_weekly"], keep_migrations=fields["keep_migrations"],
                  media=fields["media"], age_recipient=fields["age_recipient"],
                  offsite=_offsite(offsite, name) if offsite and entry is not False else None)


def _offsite(given: dict[str, Any], name: str) -> Offsite | None:
    """The app's offsite settings, merged, checked as a whole: the repository of its own, and only
    the credentials its kind of repository reads."""
    if not given.get("repository"):
        if set(given) - {"check"}:
            raise schema.Problem("backup", "offsite: repository: None " + schema.FORMS["repository"])
        return None
    repository = f"{given['repository'].rstrip('/')}/{name}"
    kind = "local" if repository[0] == "/" else repository.split(":", 1)[0]
    for setting, wanted in (("sftp_key", "sftp"), ("known_hosts", "sftp"), ("s3_access_key_id", "s3"),
                        ("s3_secret_access_key", "s3")):
        if setting in given and kind != wanted:
            raise schema.Problem("backup", f"offsite: {setting}: only an {wanted} repository reads it "
                                           f"(this one is {kind})")
    if kind == "s3" and ("s3_access_key_id" in given) != ("s3_secret_access_key" in given):
        raise schema.Problem("backup", "offsite: give both s3_access_key_id and s3_secret_access_key, or neither")
    key = given.get("sftp_key")
    return Offsite(repository=repository, check=given.get("check") or _check_at(name),
                   password=given.get("password"), sftp_key=Path(key).expanduser().resolve() if key else None,
                   known_hosts=given.get("known_hosts"), s3_access_key_id=given.get("s3_access_key_id"),
                   s3_secret_access_key=given.get("s3_secret_access_key"))


def _check_at(name: str) -> str:
    """Weekly, Sundays at defaults.OFFSITE_CHECK_HOUR, at the minute of the app's backups."""
    minute = schema.cron_at("weekly", name).split(" ", 1)[0]
    return f"{minute} {defaults.OFFSITE_CHECK_HOUR} * * 0"


def _period(cron: str | None) -> int:
    """The time between two runs of `cron`, as the status view judges a backup's age: a week when
    it names weekdays, a day when it names hours, else an hour."""
    if cron is None:
        return 0
    _, hour, _, _, weekday = cron.split(" ")
    if weekday != "*":
        return BACKUP_AT["weekly"]
    if hour.startswith("*/"):
        return int(hour[2:]) * BACKUP_AT["hourly"]
    return BACKUP_AT["hourly" if hour == "*" else "daily"]


def _module_file(source: Path, module: str) -> Path:
    *package, leaf = module.split(".")
    return source.joinpath(*package, f"{leaf}.py")


def default_module(source: Path, kind: str = "wsgi") -> tuple[str | None, str]:
    """<package>.wsgi (or .asgi) of the only package of the project holding a wsgi.py (asgi.py);
    else None and what was found."""
    packages = sorted(path.parent.name for path in source.glob(f"*/{kind}.py"))
    if len(packages) == 1:
        return f"{packages[0]}.{kind}", ""
    return None, ", ".join(f"{package}/{kind}.py" for package in packages) or f"no package with a {kind}.py"


def only_asgi(project: Path) -> None:
    """A project with an asgi.py and no wsgi.py is served by an ASGI server: say so on `server`
    rather than that no WSGI module can be guessed."""
    if not any(project.glob("*/wsgi.py")) and any(project.glob("*/asgi.py")):
        found = ", ".join(sorted(f"{path.parent.name}/asgi.py" for path in project.glob("*/asgi.py")))
        raise schema.Problem("server", f"the project has {found} and no wsgi.py: it is an ASGI project; set "
                                       "\"server\": \"asgi\"")


def project_text(path: Path, limit: int = 1024 * 1024) -> str:
    """The start of a file of the project as the planner reads it (settings, wsgi.py): a regular
    file only, never through a link, a FIFO or a device, and at most `limit` bytes of it; "" else.
    A repository's files are a committer's."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return ""
        return file.read(limit).decode(errors="replace")


def settings_files(project: Path, settings_module: str) -> list[Path]:
    """The files of the project's settings: the module, and the modules beside it in a settings
    package (production.py imports base.py, where INSTALLED_APPS usually is)."""
    module = _module_file(project, settings_module)
    if module.parent.joinpath("__init__.py").is_file() and module.parent.name == "settings":
        return sorted(module.parent.glob("*.py"))
    return [module] if module.is_file() else []


def channels_settings(project: Path, settings_module: str, server: str) -> bool:
    """Whether the project's settings install Channels with no channel layer of their own but the
    in-memory one (a process's alone, whose groups reach neither the other workers nor bin/manage):
    then it needs the app's Redis (see deploys.components.broker). Settings that install Channels or
    Daphne are refused with server wsgi, whose Gunicorn would serve no WebSocket."""
    texts = [project_text(path) for path in settings_files(project, settings_module)]
    installed = sorted({match.group(1) for text in texts for match in ASGI_APPS_RE.finditer(text)})
    if installed and server != "asgi":
        raise schema.Problem("server", f"the project's settings install {' and '.join(installed)}, which serve "
                                       "WebSockets and async views: set \"server\": \"asgi\"")
    own_layer = any(CHANNEL_LAYERS_RE.search(text) for text in texts) and not any(
        "InMemoryChannelLayer" in text for text in texts)
    return "channels" in installed and not own_layer


def default_settings_module(source: Path, wsgi_module: str) -> tuple[str | None, str]:
    """The settings the project serves with, and why they were chosen; else None and the settings
    modules found (`wsgi_module`: the WSGI or, for an ASGI app, the ASGI module; both name the
    settings alike).

    The module the project's wsgi.py names as DJANGO_SETTINGS_MODULE's default, unless it is a
    development one (dev, local, test...) and the settings package has a production module
    (production, prod, live): Wagtail's template and many others name their dev settings there.
    Else <package>.settings.
    """
    wsgi_file = _module_file(source, wsgi_module)
    named = SETTINGS_DEFAULT_RE.search(project_text(wsgi_file))
    package = wsgi_module.rpartition(".")[0]
    settings = f"{package}.settings"
    production = next((f"{settings}.{leaf}" for leaf in PRODUCTION_SETTINGS
                       if _module_file(source, f"{settings}.{leaf}").is_file()), None)
    if named and _is_module(source, named.group(1)):
        module = named.group(1)
        if module.rpartition(".")[2] not in DEVELOPMENT_SETTINGS or production is None:
            return module, f"named by {wsgi_file.name}"
        return production, f"{wsgi_file.name} names {module}, a development module"
    if production:
        return production, "the production module of the settings package"
    if _module_file(source, settings).is_file():
        return settings, "the project's settings module"
    settings_dir = _module_file(source, settings).with_suffix("")
    modules = sorted(f"{settings}.{path.stem}" for path in settings_dir.glob("*.py") if path.stem != "__init__")
    return None, ", ".join(modules) or f"no {package}/settings.py"


def _is_module(source: Path, module: str) -> bool:
    return _module_file(source, module).is_file() or _module_file(source, f"{module}.__init__").is_file()


def check_apps(host_name: str, apps: list[App], state: Any) -> None:
    """Checks that need the host (its HostState): an app name that is already a system user or
    group which djangohost did not create; a git ref the repository does not have. (The
    components check their own fields: deploys.components.registry.check_host.)"""
    for app in apps:
        mirror = state.mirrors.get(app.name)
        if app.git and mirror and mirror.ref_missing and mirror.url == app.git.url:
            raise InventoryError(
                f"host {host_name}, app {app.name}, field source: {safe.printable(mirror.error)} ({app.git.url})")
        home = state.users.get(app.name)
        if home is not None and home != app.home:
            raise InventoryError(
                f"host {host_name}, app {app.name}, field name: the host has a user {app.name} "
                f"(home {home}) that djangohost did not create; choose another name")
        if home is None and app.present and app.name in state.groups:
            raise InventoryError(
                f"host {host_name}, app {app.name}, field name: the host has a group {app.name} "
                f"that djangohost did not create; choose another name")
