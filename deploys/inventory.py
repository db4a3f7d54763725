"""The inventory contract: read, validate and resolve every app entry of every host.

Validation runs over the whole inventory before any operation is prepared, so a bad entry on one
host stops the run on all hosts, with a message naming the host, the app and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pyinfra.api.exceptions import PyinfraError

from deploys import defaults

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
# RFC 1123 host names; a leading "*." allows Nginx wildcard names.
DOMAIN_RE = re.compile(
    r"^(\*\.)?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings.production") in a wsgi.py
SETTINGS_DEFAULT_RE = re.compile(r"""["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][\w.]*)["']""")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Branch, tag or commit names git accepts, without shell or option meaning.
REF_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]{1,200}$")
RELATIVE_RE = re.compile(r"^(?!/)(?!.*\.\.)[A-Za-z0-9._/+-]+$")
EMAIL_RE = re.compile(r"^[^@\s'\"]+@[^@\s'\"]+\.[^@\s'\"]+$")
SIZE_RE = re.compile(r"^[0-9]+[kKmMgG]?$")
# Host-level settings that end up in commands run as root: their forms.
ROOT_RE = re.compile(r"(/[A-Za-z0-9._-]+)+/?")
GROUP_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
COMMAND_RE = re.compile(r"[A-Za-z0-9._/+-]+")
VERSION_RE = re.compile(r"[0-9]+(\.[0-9A-Za-z]+)*")
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
REQUIREMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\[\],<>=!~-]*")
# Names the host already gives a meaning: PostgreSQL's own databases and roles (and its pg_
# prefix), MariaDB's own, and Nginx's default site. An app of that name would take them over.
RESERVED_NAMES = {"postgres", "template0", "template1", "public", "mysql", "sys", "root",
                  "information_schema", "performance_schema", "default"}
# Names the deploy itself sets in an app's environment (DATABASE_URL too when it has a database).
RESERVED_ENV = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
APP_FIELDS = {
    "name",
    "domains",
    "source",
    "wsgi_module",
    "settings_module",
    "requirements",
    "workers",
    "env",
    "secrets",
    "database",
    "client_max_body_size",
    "health_path",
    "health_timeout",
    "state",
    "purge",
    "tls",
}
REQUIRED_FIELDS = ("name", "domains", "source")


class InventoryError(PyinfraError):
    """A host's data breaks the inventory contract."""


@dataclass(frozen=True)
class HostSettings:
    """Host-level settings, defaults from deploys.defaults."""

    root: str
    group: str
    python: str
    gunicorn_version: str
    packages: tuple[str, ...]
    database_driver: str
    mariadb_driver: str
    keep_releases: int


@dataclass(frozen=True)
class GitSource:
    """An app's code in a git repository, fetched on the host by the app's user."""

    url: str
    ref: str  # a branch, tag or commit
    deploy_key: Path | None = None  # a private key on the machine running pyinfra


@dataclass(frozen=True)
class Tls:
    """How an app's HTTPS certificate is had (see deploys.defaults)."""

    mode: str  # provided, self-signed or acme
    cert: Path | None = None  # provided
    key: Path | None = None  # provided
    email: str = ""  # acme
    directory: str = defaults.ACME_DIRECTORY  # acme
    hsts_max_age: int = defaults.HSTS_MAX_AGE


@dataclass(frozen=True)
class App:
    """One validated app entry, with every default resolved and every path named."""

    name: str
    domains: tuple[str, ...]
    source: Path  # a local project directory; Path() when `git` is set
    wsgi_module: str
    settings_module: str
    requirements: str | None
    workers: int | None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    database: str | None = "postgresql"  # the engine (defaults.DATABASE_ENGINES), None without
    client_max_body_size: str = defaults.CLIENT_MAX_BODY_SIZE
    health_path: str = defaults.HEALTH_PATH
    health_timeout: float = defaults.HEALTH_TIMEOUT
    present: bool = True  # False: "state": "absent", the app is removed
    purge: bool = False  # with absent: its database, role, files and user go too
    root: str = defaults.ROOT
    git: GitSource | None = None
    tls: Tls | None = None

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
    def socket(self) -> str:
        return self.path("run", "gunicorn.sock")


def host_settings(host_name: str, data: Any) -> HostSettings:
    """Host-level settings from host data (a mapping or pyinfra's HostData), each checked for the
    form it must have: they end up in commands run as root."""
    def get(key: str, pattern: re.Pattern[str] | None = None, what: str = "") -> Any:
        value = data.get(key)
        value = defaults.HOST_DEFAULTS[key] if value is None else value
        if pattern and (not isinstance(value, str) or not pattern.fullmatch(value)):
            raise InventoryError(f"host {host_name}, field {key}: {value!r} must be {what}")
        return value

    root = get("djangohost_root", ROOT_RE, "an absolute path of letters, digits, . _ and -")
    if ".." in root.split("/"):
        raise InventoryError(f"host {host_name}, field djangohost_root: {root!r} must not hold ..")
    packages = get("djangohost_packages")
    if not isinstance(packages, (list, tuple)) or not all(
            isinstance(package, str) and PACKAGE_RE.fullmatch(package) for package in packages):
        raise InventoryError(f"host {host_name}, field djangohost_packages: {packages!r} must be a list "
                             "of Debian package names")
    keep = get("djangohost_keep_releases")
    if type(keep) is not int or keep < 1:
        raise InventoryError(f"host {host_name}, field djangohost_keep_releases: {keep!r} must be a whole "
                             "number of at least 1")
    requirement = "a pip requirement without spaces, e.g. PyMySQL>=1.1,<2"
    return HostSettings(
        root=root.rstrip("/"),
        group=get("djangohost_group", GROUP_RE, "a group name: lowercase letters, digits, _ and -"),
        python=get("djangohost_python", COMMAND_RE, "a command or path such as python3"),
        gunicorn_version=get("djangohost_gunicorn_version", VERSION_RE, "a version such as 23.0.0"),
        packages=tuple(packages),
        database_driver=get("djangohost_database_driver", REQUIREMENT_RE, requirement),
        mariadb_driver=get("djangohost_mariadb_driver", REQUIREMENT_RE, requirement),
        keep_releases=keep,
    )


def load_inventory(hosts: Iterable[Any]) -> dict[str, list[App]]:
    """Validate the `apps` of every host, and the `app` selection (`--data app=hello,goodbye`);
    return the apps by host name, or raise InventoryError."""
    hosts = list(hosts)
    apps = {host.name: load_apps(host.name, host.data) for host in hosts}
    for host in hosts:
        wanted = selection(host.data)
        if wanted is None:
            continue
        known = {app.name for host_apps in apps.values() for app in host_apps}
        unknown = sorted(wanted - known)
        if unknown:
            raise InventoryError(f"--data app: no app named {', '.join(unknown)} in the inventory "
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


def load_apps(host_name: str, data: Any) -> list[App]:
    """Validate and resolve the `apps` list of one host's data."""
    settings = host_settings(host_name, data)
    raw_apps = data.get("apps") or []
    if not isinstance(raw_apps, list):
        raise InventoryError(f"host {host_name}: `apps` must be a list of app entries")

    apps: list[App] = []
    seen_domains: dict[str, str] = {}
    for index, raw in enumerate(raw_apps):
        app = _load_app(host_name, index, raw, settings.root)
        where = f"host {host_name}, app {app.name}"
        if any(other.name == app.name for other in apps):
            raise InventoryError(f"{where}, field name: duplicate app name")
        for other in apps:
            if app.present and other.present and not (app.git or other.git) and other.source != app.source and (
                    other.source in app.source.parents or app.source in other.source.parents):
                outer, inner = (other, app) if other.source in app.source.parents else (app, other)
                raise InventoryError(
                    f"{where}, field source: {inner.source} is inside the source of app {outer.name}, "
                    f"which would ship {inner.name}'s project as part of its own")
        for domain in app.domains:
            if domain in seen_domains:
                raise InventoryError(
                    f"{where}, field domains: {domain} is already used by app {seen_domains[domain]}"
                )
            seen_domains[domain] = app.name
        apps.append(app)
    return apps


def _load_app(host_name: str, index: int, raw: Any, root: str) -> App:
    label = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else f"#{index + 1}"
    where = f"host {host_name}, app {label}"

    def fail(field_name: str, message: str) -> InventoryError:
        return InventoryError(f"{where}, field {field_name}: {message}")

    if not isinstance(raw, dict):
        raise InventoryError(f"{where}: an app entry must be a dict, got {type(raw).__name__}")
    unknown = sorted(set(raw) - APP_FIELDS)
    if unknown:
        raise fail(unknown[0], f"unknown field (known fields: {', '.join(sorted(APP_FIELDS))})")
    state = raw.get("state", "present")
    if state not in ("present", "absent"):
        raise fail("state", f"{state!r} must be present or absent")
    purge = raw.get("purge", False)
    if not isinstance(purge, bool) or (purge and state != "absent"):
        raise fail("purge", "must be true or false, and true only with state absent")
    database = _database(raw.get("database", True), fail)
    if state == "absent":
        name = _name(raw.get("name"), fail)
        return App(name=name, domains=(), source=Path(), wsgi_module="", settings_module="",
                   requirements=None, workers=None, database=database, present=False, purge=purge,
                   root=root)
    for key in REQUIRED_FIELDS:
        if raw.get(key) in (None, "", []):
            raise fail(key, "is required")

    name = _name(raw["name"], fail)

    domains = raw["domains"]
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise fail("domains", "must be a list of host names")
    for domain in domains:
        if not DOMAIN_RE.fullmatch(domain):
            raise fail("domains", f"{domain!r} is not a valid host name")
    if len(set(domains)) != len(domains):
        raise fail("domains", "lists a host name twice")

    git = None
    if isinstance(raw["source"], dict):
        git = _git_source(raw["source"], fail)
        source = Path()
        for key in ("wsgi_module", "settings_module"):
            if raw.get(key) is None:
                raise fail(key, "is required with a git source (the project is not on this machine)")
    elif isinstance(raw["source"], str):
        source = Path(raw["source"]).resolve()
        if not (source / "manage.py").is_file():
            raise fail("source", f"{source} is not a Django project directory (no manage.py)")
    else:
        raise fail("source", "must be a local directory or {\"git\": URL, \"ref\": BRANCH_TAG_OR_SHA}")

    wsgi_module = _module_field(raw, "wsgi_module", lambda: default_wsgi_module(source), fail)
    settings_module = _module_field(raw, "settings_module",
                                    lambda: default_settings_module(source, wsgi_module), fail)

    requirements = raw.get("requirements")
    if git:
        # Looked for at the deployed commit: a repository without it gets no requirements.
        requirements = requirements or defaults.REQUIREMENTS_FILE
        if not isinstance(requirements, str) or not RELATIVE_RE.fullmatch(requirements):
            raise fail("requirements", f"{requirements!r} must be a path inside the repository")
    elif requirements is None:
        if (source / defaults.REQUIREMENTS_FILE).is_file():
            requirements = defaults.REQUIREMENTS_FILE
    elif (not isinstance(requirements, str) or not RELATIVE_RE.fullmatch(requirements)
          or not (source / requirements).resolve().is_relative_to(source) or not (source / requirements).is_file()):
        raise fail("requirements", f"{requirements!r} is not a file inside {source} (letters, digits, . _ / + - "
                                   "only)")

    workers = raw.get("workers")
    if workers is not None and (type(workers) is not int or workers < 1):
        raise fail("workers", f"{workers!r} must be a whole number of at least 1")

    reserved = RESERVED_ENV | ({"DATABASE_URL"} if database else set())
    env = _environment(raw, "env", reserved, fail)
    secrets = _environment(raw, "secrets", reserved, fail)
    both = sorted(set(env) & set(secrets))
    if both:
        raise fail("secrets", f"{both[0]} is also in env")

    body_size = raw.get("client_max_body_size", defaults.CLIENT_MAX_BODY_SIZE)
    if not isinstance(body_size, str) or not SIZE_RE.fullmatch(body_size):
        raise fail("client_max_body_size", f"{body_size!r} must look like 10m, 512k or 1g")

    health_path = raw.get("health_path", defaults.HEALTH_PATH)
    if not isinstance(health_path, str) or not health_path.startswith("/") or any(c.isspace() for c in health_path):
        raise fail("health_path", f"{health_path!r} must be a URL path starting with /")
    health_timeout = raw.get("health_timeout", defaults.HEALTH_TIMEOUT)
    if type(health_timeout) not in (int, float) or not 0 < health_timeout < math.inf:
        raise fail("health_timeout", f"{health_timeout!r} must be a finite number of seconds above 0")

    tls = _tls(raw["tls"], fail) if raw.get("tls") is not None else None
    if tls and tls.mode == "acme" and any(domain.startswith("*.") for domain in domains):
        raise fail("tls", "acme certificates are issued over HTTP-01, which cannot prove a wildcard domain")

    return App(
        name=name,
        domains=tuple(domains),
        source=source,
        wsgi_module=wsgi_module,
        settings_module=settings_module,
        requirements=requirements,
        workers=workers,
        env=env,
        secrets=secrets,
        database=database,
        client_max_body_size=body_size,
        health_path=health_path,
        health_timeout=health_timeout,
        root=root,
        git=git,
        tls=tls,
    )


def _name(name: Any, fail) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise fail("name", f"{name!r} must match {NAME_RE.pattern}")
    if name in RESERVED_NAMES or name.startswith("pg_"):
        raise fail("name", f"{name!r} is a name the host already uses (PostgreSQL's, MariaDB's or "
                           "Nginx's own); choose another")
    return name


def _database(raw: Any, fail) -> str | None:
    """The engine of `database`: true is PostgreSQL, false none."""
    if isinstance(raw, bool):
        return "postgresql" if raw else None
    engines = " or ".join(defaults.DATABASE_ENGINES)
    if not isinstance(raw, dict) or set(raw) != {"engine"} or raw["engine"] not in defaults.DATABASE_ENGINES:
        raise fail("database", f"{raw!r} must be true, false or {{\"engine\": {engines}}}")
    return str(raw["engine"])


def _git_source(raw: dict, fail) -> GitSource:
    unknown = sorted(set(raw) - {"git", "ref", "deploy_key"})
    if unknown:
        raise fail("source", f"unknown key {unknown[0]!r} (known: git, ref, deploy_key)")
    url, ref, key = raw.get("git"), raw.get("ref"), raw.get("deploy_key")
    if not isinstance(url, str) or not url or url.startswith("-") or any(c.isspace() for c in url):
        raise fail("source", f"git: {url!r} must be a repository URL")
    if not isinstance(ref, str) or not REF_RE.fullmatch(ref):
        raise fail("source", f"ref: {ref!r} must name a branch, tag or commit")
    deploy_key = None
    if key is not None:
        if not isinstance(key, str) or not Path(key).expanduser().is_file():
            raise fail("source", f"deploy_key: {key!r} is not a file")
        deploy_key = Path(key).expanduser().resolve()
    return GitSource(url, ref, deploy_key)


def _tls(raw: Any, fail) -> Tls:
    modes = {"provided": {"cert", "key"}, "self-signed": set(), "acme": {"email", "directory"}}
    if not isinstance(raw, dict) or raw.get("mode") not in modes:
        raise fail("tls", "must be a dict whose mode is provided, self-signed or acme")
    mode = raw["mode"]
    unknown = sorted(set(raw) - modes[mode] - {"mode", "hsts_max_age"})
    if unknown:
        raise fail("tls", f"unknown key {unknown[0]!r} for mode {mode}")
    hsts = raw.get("hsts_max_age", defaults.HSTS_MAX_AGE)
    if type(hsts) is not int or hsts < 0:
        raise fail("tls", f"hsts_max_age: {hsts!r} must be a whole number of seconds")
    if mode == "provided":
        files = {}
        for key in ("cert", "key"):
            value = raw.get(key)
            if not isinstance(value, str) or not Path(value).expanduser().is_file():
                raise fail("tls", f"{key}: {value!r} is not a file")
            files[key] = Path(value).expanduser().resolve()
        return Tls(mode, cert=files["cert"], key=files["key"], hsts_max_age=hsts)
    if mode == "acme":
        email, directory = raw.get("email"), raw.get("directory", defaults.ACME_DIRECTORY)
        if not isinstance(email, str) or not EMAIL_RE.fullmatch(email):
            raise fail("tls", f"email: {email!r} is not an email address")
        if not isinstance(directory, str) or not directory.startswith("https://"):
            raise fail("tls", f"directory: {directory!r} must be an https:// URL")
        return Tls(mode, email=email, directory=directory, hsts_max_age=hsts)
    return Tls(mode, hsts_max_age=hsts)


def _environment(raw: dict, key: str, reserved: set[str], fail) -> dict[str, str]:
    values = raw.get(key) or {}
    if not isinstance(values, dict):
        raise fail(key, "must be a dict of variable names to values")
    for name, value in values.items():
        if not isinstance(name, str) or not ENV_KEY_RE.fullmatch(name):
            raise fail(key, f"{name!r} is not a valid environment variable name")
        if name in reserved:
            raise fail(key, f"{name} is set by djangohost and cannot be overridden")
        if not isinstance(value, (str, int, float, bool)):
            raise fail(key, f"{name}: value must be a string or a number")
        if any(c in str(value) for c in "\n\r\0"):
            # The environment file is read line by line: a line break would add a variable.
            raise fail(key, f"{name}: value must not hold a line break or a NUL")
    return {name: str(value) for name, value in values.items()}


def _module_field(raw: dict, key: str, guess: Callable[[], tuple[str | None, str]], fail) -> str:
    """A given module path, checked; or the one `guess` finds in the source."""
    value = raw.get(key)
    if value is not None:
        if not isinstance(value, str) or not MODULE_RE.fullmatch(value):
            raise fail(key, f"{value!r} is not a dotted Python module path")
        return value
    found, seen = guess()
    if found is None:
        raise fail(key, f"cannot be guessed (found: {seen}); set it")
    return found


def _module_file(source: Path, module: str) -> Path:
    *package, leaf = module.split(".")
    return source.joinpath(*package, f"{leaf}.py")


def default_wsgi_module(source: Path) -> tuple[str | None, str]:
    """<package>.wsgi of the only package of the project holding a wsgi.py; else None and what
    was found."""
    packages = sorted(path.parent.name for path in source.glob("*/wsgi.py"))
    if len(packages) == 1:
        return f"{packages[0]}.wsgi", ""
    return None, ", ".join(f"{package}/wsgi.py" for package in packages) or "no package with a wsgi.py"


def default_settings_module(source: Path, wsgi_module: str) -> tuple[str | None, str]:
    """The settings the project serves with; else None and the settings modules found.

    That is the module its WSGI file names as DJANGO_SETTINGS_MODULE's default, else
    <package>.settings, else the production module of a settings package
    (<package>/settings/production.py or prod.py).
    """
    wsgi_file = _module_file(source, wsgi_module)
    named = SETTINGS_DEFAULT_RE.search(wsgi_file.read_text(errors="replace")) if wsgi_file.is_file() else None
    package = wsgi_module.rpartition(".")[0]
    if named and (_module_file(source, named.group(1)).is_file()
                  or _module_file(source, f"{named.group(1)}.__init__").is_file()):
        return named.group(1), ""
    for candidate in (f"{package}.settings", f"{package}.settings.production", f"{package}.settings.prod"):
        if _module_file(source, candidate).is_file():
            return candidate, ""
    settings_dir = _module_file(source, f"{package}.settings").with_suffix("")
    modules = sorted(f"{package}.settings.{path.stem}" for path in settings_dir.glob("*.py")
                     if path.stem != "__init__")
    return None, ", ".join(modules) or f"no {package}/settings.py"


def check_host(host_name: str, apps: list[App], state: Any) -> None:
    """Checks that need the host (its HostState): an app name that is already a system user or
    group which djangohost did not create; a git ref the repository does not have."""
    for app in apps:
        mirror = state.mirrors.get(app.name)
        if app.git and mirror and mirror.ref_missing and mirror.url == app.git.url:
            raise InventoryError(
                f"host {host_name}, app {app.name}, field source: {mirror.error} ({app.git.url})")
        home = state.users.get(app.name)
        if home is not None and home != app.home:
            raise InventoryError(
                f"host {host_name}, app {app.name}, field name: the host has a user {app.name} "
                f"(home {home}) that djangohost did not create; choose another name")
        if home is None and app.present and app.name in state.groups:
            raise InventoryError(
                f"host {host_name}, app {app.name}, field name: the host has a group {app.name} "
                f"that djangohost did not create; choose another name")
