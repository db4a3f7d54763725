"""The inventory contract as typed models: what host data and each app entry may hold.

An app entry is AppEntry with each component's part (Part, in deploys/components/<name>/contract.py),
put together by deploys.components.registry.CONTRACT (assemble). Its JSON Schema, for editors:
`python -m deploys.reference --json > inventory.schema.json`.

Every field checks its type and form, with the reason a user reads; deploys.model.inventory reports
every problem of every host at once, each naming the host, the app and the field, then resolves
the entries into what the deploys use (deploys.model.inventory.App). Defaults are deploys.model.defaults'.
Types are strict: "4" is not a number of workers, nor true a number of seconds.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from deploys.engine.safe import is_control
from deploys.model import defaults

if TYPE_CHECKING:
    from deploys.model.inventory import App, HostSettings

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,30}")
# RFC 1123 host names; a leading "*." allows Nginx wildcard names.
DOMAIN_RE = re.compile(
    r"(\*\.)?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
REF_RE = re.compile(r"(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]{1,200}")
RELATIVE_RE = re.compile(r"(?!/)(?!.*\.\.)[A-Za-z0-9._/+-]+")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}")
# The characters of a URL (RFC 3986): no space, quote, backslash or control character.
URL_CHARS = r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]"
# A repository git fetches: a URL, an scp-like user@host:path or an absolute path; not an option
# (-...) nor one of git's remote helpers (ext::, fd::), which run commands.
GIT_URL_RE = re.compile(rf"(?!-)(?![A-Za-z][A-Za-z0-9+.-]*::){URL_CHARS}{{1,1000}}")
HTTPS_URL_RE = re.compile(rf"https://{URL_CHARS}{{1,1000}}")
WEBHOOK_RE = re.compile(rf"https?://[A-Za-z0-9.-]+(:[0-9]{{1,5}})?(/{URL_CHARS}{{0,1000}})?")
URL_PATH_RE = re.compile(rf"/{URL_CHARS}{{0,1000}}")
SIZE_RE = re.compile(r"[0-9]+[kKmMgG]?")
# Host-level settings that end up in commands run as root: their forms.
ROOT_RE = re.compile(r"(/[A-Za-z0-9._-]+)+/?")
GROUP_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
COMMAND_RE = re.compile(r"[A-Za-z0-9._/+-]+")
VERSION_RE = re.compile(r"[0-9]+(\.[0-9A-Za-z]+)*")
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
REQUIREMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\[\],<>=!~-]*")
# One field of a cron schedule, numbers only: */15, 1-5, 0,30, 3.
CRON_FIELD_RE = re.compile(r"(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,[0-9]+(-[0-9]+)?(/[0-9]+)?)*")
# A command line of processes and jobs: no control characters, and no % (cron and Supervisor
# each give it a meaning of their own).
PROCESS_COMMAND_RE = re.compile(r"[^\x00-\x1f\x7f-\x9f%\u2028\u2029]+")
# What each of the five cron fields may hold.
CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
# Names an app's processes cannot take: its Gunicorn's and its broker's programs.
RESERVED_PROCESSES = {"web", "redis"}
AGE_RECIPIENT_RE = re.compile(r"age1[02-9ac-hj-np-z]{58}")
# An off-host restic repository (backup "offsite"): a local directory, SFTP or S3-compatible
# storage. Its characters are a path's, a host's and a URL's only: restic is run without a shell,
# but the string is still an argument of a program run as root (no leading -, no option).
_REPO_PATH = r"/(?!.*\.\.)[A-Za-z0-9._/-]*"
_REPO_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?"
OFFSITE_REPOSITORY_RE = re.compile(
    rf"{_REPO_PATH}"
    rf"|sftp:[a-z_][a-z0-9_.-]{{0,31}}@{_REPO_HOST}:{_REPO_PATH}"
    rf"|sftp://[a-z_][a-z0-9_.-]{{0,31}}@{_REPO_HOST}(?::[0-9]{{1,5}})?/{_REPO_PATH}"
    rf"|s3:https?://{_REPO_HOST}(?::[0-9]{{1,5}})?/[a-z0-9][a-z0-9.-]{{1,62}}(?:/(?!.*\.\.)[A-Za-z0-9._/-]*)?")
# A pinned SSH host key, as ssh-keyscan prints it: "HOST TYPE BASE64" (HOST may be [host]:port).
KNOWN_HOST_RE = re.compile(r"[A-Za-z0-9.:\[\],_-]{1,300} (ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa|"
                           r"sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]{20,2000}={0,2}")
S3_KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,200}")
# Names the host already gives a meaning: PostgreSQL's own databases and roles (and its pg_
# prefix), MariaDB's own, and Nginx's default site. An app of that name would take them over.
RESERVED_NAMES = {"postgres", "template0", "template1", "public", "mysql", "sys", "root",
                  "information_schema", "performance_schema", "default"}
# Names the deploy itself sets in an app's environment (DATABASE_URL too when it has a database).
RESERVED_ENV = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
REQUIRED_FIELDS = ("name", "domains", "source")

# What each field must be, for a value of the wrong type.
FORMS = {
    "name": f"must match ^{NAME_RE.pattern}$",
    "domains": "must be a list of host names",
    "source": "must be a local directory or {\"git\": URL, \"ref\": BRANCH_TAG_OR_SHA}",
    "wsgi_module": "is not a dotted Python module path",
    "asgi_module": "is not a dotted Python module path",
    "server": "must be wsgi or asgi",
    "settings_module": "is not a dotted Python module path",
    "requirements": "must be a path of a file inside the source",
    "project_dir": "must be a directory inside the source (letters, digits, . _ / + -), where manage.py is",
    "release_commands": "must be a list of command lines, each on one line, without %",
    "workers": "must be a whole number of at least 1",
    "env": "must be a dict of variable names to values",
    "secrets": "must be a dict of variable names to values",
    "database": 'must be true, false or {"engine": ENGINE}',  # ENGINE: the contract's (AppEntry._database)
    "state": "must be present or absent",
    "purge": "must be true or false, and true only with state absent",
    "tls": "must be a dict whose mode is provided, self-signed or acme",
    "backup": f"must be false or a dict with keys {', '.join(defaults.BACKUP)}, cron",
    "git": "must be a repository URL (the characters of a URL; no option, no ext:: or fd:: helper)",
    "ref": "must name a branch, tag or commit",
    "deploy_key": "is not a file",
    "mode": "must be provided, self-signed or acme",
    "cert": "is not a file",
    "key": "is not a file",
    "email": "is not an email address",
    "directory": "must be an https:// URL (the characters of a URL)",
    "hsts_max_age": "must be a whole number of seconds",
    "at": "must be hourly, daily or weekly (or monthly, for a job), or give cron",
    "processes": "must be a dict of process names to command lines (or {\"command\": ..., \"stop_wait\": SECONDS})",
    "command": "must be a command line on one line, without %",
    "stop_wait": "must be a whole number of seconds, 1 or more",
    "djangohost_logs": "must be a dict with keys size (such as 10M) and keep",
    "djangohost_notify": "must be a dict with keys webhook (an http or https URL), email, restarts",
    "size": "must look like 10M, 512K or 1G",
    "keep": "must be a whole number of at least 1",
    "cron": "must be five cron fields of numbers, *, -, / and , such as \"30 2 * * *\"",
    "keep_daily": "must be a whole number, 0 or more",
    "keep_weekly": "must be a whole number, 0 or more",
    "keep_migrations": "must be a whole number, 0 or more",
    "media": "must be true or false",
    "age_recipient": "must be an age public key (age1..., from age-keygen)",
    "offsite": "must be false or a dict with keys repository, password, sftp_key, known_hosts, "
               "s3_access_key_id, s3_secret_access_key, check",
    "repository": "must be a restic repository: an absolute directory, sftp:USER@HOST:/PATH, "
                  "sftp://USER@HOST:PORT//PATH or s3:https://HOST/BUCKET[/PREFIX] (letters, digits, . _ / -)",
    "password": "must be a string of 16 to 1000 characters on one line (the value is not shown)",
    "sftp_key": "is not a file",
    "known_hosts": "must be a host key line as ssh-keyscan prints it: HOST TYPE KEY",
    "s3_access_key_id": "must be an S3 access key id (letters, digits, . _ -)",
    "s3_secret_access_key": "must be a string of 1 to 1000 characters on one line (the value is not shown)",
    "djangohost_root": "must be an absolute path of letters, digits, . _ and -",
    "djangohost_group": "must be a group name: lowercase letters, digits, _ and -",
    "djangohost_python": "must be a command or path such as python3",
    "djangohost_gunicorn_version": "must be a version such as 23.0.0",
    "djangohost_packages": "must be a list of Debian package names",
    "djangohost_database_driver": "must be a pip requirement without spaces, e.g. PyMySQL>=1.1,<2",
    "djangohost_mariadb_driver": "must be a pip requirement without spaces, e.g. PyMySQL>=1.1,<2",
    "djangohost_keep_releases": "must be a whole number of at least 1",
    "djangohost_build_tools": "must be true or false",
    "djangohost_backup": f"must be a dict with keys {', '.join(defaults.BACKUP)}, cron",
}


# The pattern each string field matches whole.
PATTERNS = {"ref": REF_RE, "size": SIZE_RE,
            "age_recipient": AGE_RECIPIENT_RE, "repository": OFFSITE_REPOSITORY_RE, "known_hosts": KNOWN_HOST_RE,
            "s3_access_key_id": S3_KEY_ID_RE,
            "wsgi_module": MODULE_RE, "asgi_module": MODULE_RE, "settings_module": MODULE_RE,
            "djangohost_group": GROUP_RE, "djangohost_python": COMMAND_RE,
            "djangohost_gunicorn_version": VERSION_RE, "djangohost_database_driver": REQUIREMENT_RE,
            "djangohost_mariadb_driver": REQUIREMENT_RE}


class Problem(Exception):
    """A rule that spans fields, broken: the field to name and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def form(pattern: re.Pattern[str], value: str, field: str, forms: Mapping[str, str] = FORMS) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{value!r} {forms[field]}")
    return value


def formed(cls: type, value: str | None, info: ValidationInfo) -> str | None:
    """A field validator: the value matches its field's pattern (PATTERNS) whole, or is None."""
    return value if value is None else form(PATTERNS[str(info.field_name)], value, str(info.field_name))


def a_file(value: str | None, field: str) -> str | None:
    if value is not None and not Path(value).expanduser().is_file():
        raise ValueError(f"{value!r} {FORMS[field]}")
    return value


def command_line(cls: type, value: str) -> str:
    """A field validator: a command line of one line, without %, that splits into words."""
    form(PROCESS_COMMAND_RE, value, "command")
    try:
        words = shlex.split(value)
    except ValueError as error:
        raise ValueError(f"{value!r}: {error}") from None
    if not words:
        raise ValueError("is empty")
    return value


def cron_fields(cls: type, value: str | None) -> str | None:
    """A field validator: five cron fields of numbers, each within its range (or None)."""
    fields = value.split(" ") if value is not None else []
    if value is not None and (len(fields) != 5 or not all(CRON_FIELD_RE.fullmatch(part) for part in fields)):
        raise ValueError(f"{value!r} {FORMS['cron']}")
    for part, (low, high) in zip(fields, CRON_RANGES, strict=False):
        numbers = [int(number) for number in re.findall(r"(?<!/)\b[0-9]+", part)]
        if any(not low <= number <= high for number in numbers):
            raise ValueError(f"{value!r}: {part} is outside {low}-{high}")
    return value


def cron_at(at: str, name: str) -> str:
    """Five cron fields for hourly, daily, weekly or monthly, at a minute of `name`'s own, so that
    the apps and jobs of a host do not all start at once."""
    minute = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 60
    return {"hourly": f"{minute} * * * *", "daily": f"{minute} 3 * * *", "weekly": f"{minute} 3 * * 0",
            "monthly": f"{minute} 3 1 * *"}[at]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


M = TypeVar("M", bound=Model)


def reason(error: ErrorDetails, field: str, forms: Mapping[str, str] = FORMS) -> str:
    """What is wrong with `field`, from one of pydantic's errors about it, in djangohost's words."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return f"{error['input']!r} {forms.get(field, error['msg'])}"


def nested(model: type[M], value: Any, forms: Mapping[str, str] = FORMS) -> M:
    """`value` validated as `model`, or a ValueError saying which of its keys is wrong and why."""
    try:
        return model.model_validate(value)
    except ValidationError as invalid:
        error = invalid.errors()[0]
        if not error["loc"]:
            raise ValueError(reason(error, "")) from None
        key = str(error["loc"][0])
        if error["type"] == "extra_forbidden":
            raise ValueError(f"unknown key {key!r} (known: {', '.join(model.model_fields)})") from None
        if error["type"] == "missing":
            raise ValueError(f"{key}: None {forms.get(key, 'is required')}") from None
        raise ValueError(f"{key}: {reason(error, key, forms)}") from None


def entry(model: type[M], value: Any, field: str, forms: Mapping[str, str] = FORMS) -> M:
    """`value`, a dict, validated as `model`; anything else is wrong as forms[field] says."""
    if not isinstance(value, dict):
        raise ValueError(f"{value!r} {forms[field]}")
    return nested(model, value, forms)


class GitSourceEntry(Model):
    """An app's code in a git repository, fetched on the host by its build identity."""

    git: str = Field(description="The repository's URL.")
    ref: str = Field(description="A branch (its newest commit is deployed on every run), tag or commit.")
    deploy_key: str | None = Field(None, description="A private key on the machine running pyinfra.")

    @field_validator("git")
    @classmethod
    def _url(cls, value: str) -> str:
        return form(GIT_URL_RE, value, "git")

    _forms = field_validator("ref")(formed)

    @field_validator("deploy_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return a_file(value, "deploy_key")


class TlsEntry(Model):
    """HTTPS for all the app's domains."""

    mode: Literal["provided", "self-signed", "acme"] = Field(
        description="provided: the certificate files given; self-signed: made on the host once, kept; acme: from an "
                    "ACME server with certbot through the running Nginx (webroot), renewed by certbot's timer.",
    )
    cert: str | None = Field(None, description="provided: the certificate chain, a file on this machine.")
    key: str | None = Field(None, description="provided: its private key, a file on this machine.")
    email: str | None = Field(None, description="acme: the account's email address.")
    directory: str | None = Field(None, description=f"acme: the ACME directory; default {defaults.ACME_DIRECTORY}.")
    hsts_max_age: int = Field(defaults.HSTS_MAX_AGE, ge=0, description="Seconds of Strict-Transport-Security; 0: none.")

    @model_validator(mode="before")
    @classmethod
    def _a_mode(cls, value: Any) -> Any:
        if not isinstance(value, dict) or value.get("mode") not in ("provided", "self-signed", "acme"):
            raise ValueError(FORMS["tls"])
        return value

    @field_validator("cert", "key")
    @classmethod
    def _files(cls, value: str | None, info: ValidationInfo) -> str | None:
        return a_file(value, str(info.field_name))

    @model_validator(mode="after")
    def _mode(self) -> TlsEntry:
        keys = {"provided": {"cert", "key"}, "self-signed": set(), "acme": {"email", "directory"}}[self.mode]
        unknown = sorted(key for key in ("cert", "key", "email", "directory") if getattr(self, key) is not None
                         and key not in keys)
        if unknown:
            raise Problem("tls", f"unknown key {unknown[0]!r} for mode {self.mode}")
        for key in ("cert", "key") if self.mode == "provided" else ():
            if getattr(self, key) is None:
                raise Problem("tls", f"{key}: None {FORMS[key]}")
        if self.mode == "acme":
            if self.email is None or not EMAIL_RE.fullmatch(self.email):
                raise Problem("tls", f"email: {self.email!r} {FORMS['email']}")
            if self.directory is not None and not HTTPS_URL_RE.fullmatch(self.directory):
                raise Problem("tls", f"directory: {self.directory!r} {FORMS['directory']}")
        return self


def secret_text(value: Any, field: str, shortest: int) -> Any:
    """A secret's form, checked without ever showing it (errors are printed)."""
    if value is not None and (not isinstance(value, str) or not shortest <= len(value) <= 1000
                              or any(is_control(char) for char in value)):
        raise ValueError(FORMS[field])
    return value


class OffsiteEntry(Model):
    """Copies of the backups off the host, with restic; a key left out is the host's
    (djangohost_backup's offsite), except the password, which is each app's own."""

    repository: str | None = Field(
        None,
        description="The base restic repository: a directory, sftp:USER@HOST:/PATH or s3:https://HOST/BUCKET; each "
                    "app's backups go to BASE/<app>.",
    )
    password: str | None = Field(
        None,
        description="The app's repository password (a secret; per app only). Without it one is generated on the host "
                    "and lost with the host: keep it in the inventory.",
    )
    sftp_key: str | None = Field(None, description="sftp: a private key on the machine running pyinfra.")
    known_hosts: str | None = Field(
        None,
        description="sftp: the storage host's key as ssh-keyscan prints it (pinned); without it the key is accepted "
                    "on first use and kept.",
    )
    s3_access_key_id: str | None = Field(None, description="s3: the access key id.")
    s3_secret_access_key: str | None = Field(None, description="s3: the secret access key (a secret).")
    check: str | None = Field(None, description="Five cron fields: when restic check reads the repository; default "
                                                "weekly, Sundays 04:MM.")

    _forms = field_validator("repository", "known_hosts", "s3_access_key_id")(formed)
    _cron = field_validator("check")(cron_fields)

    @field_validator("password", mode="before")
    @classmethod
    def _password(cls, value: Any) -> Any:
        return secret_text(value, "password", 16)

    @field_validator("s3_secret_access_key", mode="before")
    @classmethod
    def _secret_key(cls, value: Any) -> Any:
        return secret_text(value, "s3_secret_access_key", 1)

    @field_validator("sftp_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return a_file(value, "sftp_key")


class BackupEntry(Model):
    """When backups are taken and how many are kept; a key left out is the host's."""

    at: Literal["hourly", "daily", "weekly"] | None = Field(
        None,
        description="hourly, daily (03:MM) or weekly (Sundays 03:MM), MM spread by app name.",
    )
    cron: str | None = Field(None, description="Five cron fields of numbers, instead of at.")
    keep_daily: int | None = Field(
        None, ge=0,
        description="The newest backup of each of the last N days that have one.",
    )
    keep_weekly: int | None = Field(None, ge=0, description="The newest backup of each of the last N ISO weeks.")
    keep_migrations: int | None = Field(None, ge=0, description="Dumps taken before a migration: the newest N.")
    media: bool | None = Field(None, description="Whether the media directory is archived with the database.")
    age_recipient: str | None = Field(None, description="An age public key: pulled backups are encrypted to it.")
    offsite: bool | OffsiteEntry | None = Field(
        None,
        description="false, or where restic copies the backups off the host (over the host's offsite, key by key).",
    )

    _cron = field_validator("cron")(cron_fields)
    _forms = field_validator("age_recipient")(formed)

    @field_validator("offsite", mode="before")
    @classmethod
    def _offsite(cls, value: Any) -> Any:
        return value if value is None or isinstance(value, bool) else entry(OffsiteEntry, value, "offsite")

    @model_validator(mode="after")
    def _one_schedule(self) -> BackupEntry:
        if self.at is not None and self.cron is not None:
            raise ValueError("give at or cron, not both")
        return self


class ProcessEntry(Model):
    """A long-running process of an app, beside its Gunicorn."""

    command: str = Field(
        description="A command line run in the live release, with the virtualenv's commands and bin/manage on PATH.",
    )
    stop_wait: int = Field(
        defaults.PROCESS_STOP_WAIT, ge=1,
        description="Seconds a stopping process is given to finish its work (only its main process gets the signal: "
                    "Celery's warm shutdown) before it and its children are killed.",
    )
    unique: bool = Field(False, description="Runs on one app server only (the app's primary), like Celery beat.")

    _command = field_validator("command")(command_line)


class LogsEntry(Model):
    """How the logs of a host are rotated; a key left out is defaults.LOGS'."""

    size: str = Field(
        str(defaults.LOGS["size"]),
        description="A log is rotated once it is larger (Supervisor rotates the process logs itself; logrotate, every"
                    " 10 minutes, the Nginx and job logs).",
    )
    keep: int = Field(int(str(defaults.LOGS["keep"])), ge=1, description="Rotated logs kept per log.")

    _forms = field_validator("size")(formed)


class NotifyEntry(Model):
    """Where a host's alerts go (deploys.components.notify); the webhook URL is a secret: it is
    never shown, in errors either."""

    webhook: str | None = Field(None, repr=False, description="An http or https URL that gets each alert as a JSON "
                                                              "POST (a secret: it may hold a token).")
    email: str | None = Field(None, description="An address that gets each alert through the host's sendmail.")
    restarts: int = Field(3, ge=1, description="Alert when Supervisor restarts an app's Gunicorn more often in an "
                                               "hour.")

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not WEBHOOK_RE.fullmatch(value):
            raise ValueError("must be an http:// or https:// URL without spaces or control characters (not shown: "
                             "it is a secret)")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_RE.fullmatch(value):
            raise ValueError(f"{value!r} must be an e-mail address such as ops@example.com")
        return value


class DatabaseEntry(Model):
    engine: str = Field(description="One of the engines (Engine) the contract was assembled with.")


@dataclass(frozen=True)
class Engine:
    """A database engine as the contract knows it, declared in its component's contract.py: the
    name an app chooses it by ({"engine": name}), what the app gets, the driver added to its
    virtualenv (from the host's settings), its DATABASE_URL, its part of the backup tool (a
    program under templates/), and whether the inventory's database server (the db role) may
    hold its databases."""

    name: str
    description: str
    driver: Callable[[HostSettings], str]
    url: Callable[[App], str]
    backup: str
    on_database_server: bool = False


Value = str | int | float | bool


def environment(values: dict[str, Value], field: str, reserved: set[str]) -> dict[str, Value]:
    for name, value in values.items():
        if name in reserved:
            raise ValueError(f"{name} is set by djangohost and cannot be overridden")
        control = next((char for char in str(value) if char != "\t" and is_control(char)), None)
        if control is not None:
            # The environment file is read line by line, and a secret is masked line by line in
            # diffs: a line break of any kind (Python's splitlines() breaks at \v, \x1c, \x85,
            # U+2028 too) would add a variable or show the rest of a secret. NUL ends the value,
            # and other controls act on the terminal that shows a diff.
            raise ValueError(f"{name}: value must not hold a line break or a control character "
                             f"(it holds {control!r}, at {str(value).index(control) + 1})")
    return values


class AppEntry(Model):
    """One app of a host (host data `apps`); see deploys.model.defaults for every field."""

    #: The database engines an app may choose, by name, and their entry (assemble).
    ENGINES: ClassVar[Mapping[str, Engine]] = {}
    DATABASE_ENTRY: ClassVar[type[DatabaseEntry]] = DatabaseEntry

    name: str = Field(description="The system user, its home, program and site are named after it.",
                      json_schema_extra={"pattern": f"^{NAME_RE.pattern}$"})
    state: Literal["present", "absent"] = Field(
        "present",
        description="absent: the app is retired (no longer served; its data stays unless purge).",
    )
    purge: bool = Field(False, description="With state absent: its database, files and user go too.")
    domains: list[str] | None = Field(None, description="Host names it answers to; the first is canonical.")
    source: str | GitSourceEntry | None = Field(None, description="A local project directory, or a git repository.")
    wsgi_module: str | None = Field(
        None, json_schema_extra={"pattern": f"^{MODULE_RE.pattern}$"},
        description="Default (a local source): <package>.wsgi of the only package holding a wsgi.py. Required with a "
                    "git source.",
    )
    server: Literal["wsgi", "asgi"] = Field(
        defaults.SERVER,
        description="wsgi: Gunicorn's workers; asgi: Gunicorn with uvicorn's worker (WebSockets, streams, async "
                    "views), uvicorn-worker and uvicorn[standard] added unless the project names them. A project "
                    "that installs channels or daphne, or has an asgi.py and no wsgi.py, must say asgi.",
    )
    asgi_module: str | None = Field(
        None, json_schema_extra={"pattern": f"^{MODULE_RE.pattern}$"},
        description="With server asgi. Default (a local source): <package>.asgi of the only package holding an "
                    "asgi.py. Required with a git source.",
    )
    settings_module: str | None = Field(
        None, json_schema_extra={"pattern": f"^{MODULE_RE.pattern}$"},
        description="Default (a local source): the module wsgi.py names, unless it is a development one and the "
                    "settings package has a production module; else <package>.settings. The run says which it chose. "
                    "Required with a git source.",
    )
    project_dir: str | None = Field(None, description="Where manage.py is, relative to the source's root; "
                                                      "default the root.")
    requirements: str | None = Field(None, description="A requirements file, relative to the source's root; default: "
                                                       "uv.lock, poetry.lock, Pipfile.lock, requirements.txt or "
                                                       "pyproject.toml, found.")
    release_commands: list[str] = Field(default_factory=list, description="Commands run in each new release before "
                                        "it goes live, as the app, with its commands and bin/manage on PATH.")
    workers: int | None = Field(None, ge=1, description="Gunicorn workers; default 2 x cores + 1.")
    env: dict[str, Value] = Field(default_factory=dict,
                                  description="Environment variables of the app, shown in diffs.")
    secrets: dict[str, Value] = Field(default_factory=dict, description="Masked wherever shown.")
    database: bool | DatabaseEntry = Field(
        True,
        description=f'true ({defaults.DATABASE_ENGINE}), false, or {{"engine": ENGINE}}. DATABASE_URL is set either '
                    "way.",  # with the contract's engines in place of ENGINE (assemble)
    )
    tls: TlsEntry | None = Field(
        None,
        description="HTTPS for all the app's domains; port 80 then redirects to https, except ACME challenges.",
    )
    backup: bool | BackupEntry = Field(
        True,
        description="false, or when the app's backups are taken and how many are kept (over djangohost_backup, key by"
                    " key). A dump is taken before every migration either way.",
    )
    processes: dict[str, str | ProcessEntry] = Field(
        default_factory=dict,
        description="Long-running processes beside Gunicorn, each a Supervisor program <app>-<name> run as the app: "
                    '{"worker": "celery -A shop worker", "beat": {"command": "celery -A shop beat", "unique": true}}.',
    )
    media: bool = Field(True, description="false: the app keeps no uploads on its servers (an object store); "
                                          "an app on several app servers must say so.")
    primary: str | None = Field(None, description="The app server (inventory name) that runs its schedule and "
                                                  "unique processes; default the first of its servers.")
    servers: list[str] | None = Field(None, description="The app servers (inventory names) that run it; default "
                                                        "every app server whose data declares it.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        form(NAME_RE, value, "name")
        if value in RESERVED_NAMES or value.startswith("pg_"):
            raise ValueError(f"{value!r} is a name the host already uses (PostgreSQL's, MariaDB's or Nginx's "
                             "own); choose another")
        return value

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        for domain in value or []:
            if not DOMAIN_RE.fullmatch(domain):
                raise ValueError(f"{domain!r} is not a valid host name")
        if value and len(set(value)) != len(value):
            raise ValueError("lists a host name twice")
        return value

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return nested(GitSourceEntry, value)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{value!r} {FORMS['source']}")
        return value

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        try:
            chosen = nested(cls.DATABASE_ENTRY, value)
        except ValueError:
            chosen = None
        if chosen is None or chosen.engine not in cls.ENGINES:
            raise ValueError(f"{value!r} {forms(cls)['database']}")
        return chosen

    @field_validator("backup", mode="before")
    @classmethod
    def _backup(cls, value: Any) -> Any:
        return value if isinstance(value, bool) else entry(BackupEntry, value, "backup")

    @field_validator("processes", mode="before")
    @classmethod
    def _processes(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"{value!r} {FORMS['processes']}")
        processes = {}
        for name, entry in value.items():
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a process name (^{NAME_RE.pattern}$)")
            if name in RESERVED_PROCESSES:
                raise ValueError(f"{name!r} is the name of the app's {'Gunicorn' if name == 'web' else 'broker'}; "
                                 "choose another")
            try:
                processes[name] = nested(ProcessEntry, {"command": entry} if isinstance(entry, str) else entry)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return processes

    @field_validator("project_dir")
    @classmethod
    def _project_dir(cls, value: str | None) -> str | None:
        return value if value is None else form(RELATIVE_RE, value, "project_dir")

    @field_validator("release_commands", mode="before")
    @classmethod
    def _release_commands(cls, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(command, str) for command in value):
            raise ValueError(f"{value!r} {FORMS['release_commands']}")
        for index, command in enumerate(value):
            try:
                command_line(cls, command)
            except ValueError as error:
                raise ValueError(f"command {index + 1}: {error}") from None
        return value

    @field_validator("env", "secrets", mode="before")
    @classmethod
    def _variables(cls, value: Any) -> Any:
        for name, item in value.items() if isinstance(value, dict) else ():
            if not isinstance(name, str) or not ENV_KEY_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            if not isinstance(item, (str, int, float, bool)):
                raise ValueError(f"{name}: value must be a string or a number")
        return value

    _forms = field_validator("wsgi_module", "asgi_module", "settings_module")(formed)

    @model_validator(mode="after")
    def _together(self) -> AppEntry:
        """The rules between fields."""
        if self.purge and self.state != "absent":
            raise Problem("purge", FORMS["purge"])
        if self.state == "absent":
            return self
        for key in REQUIRED_FIELDS:
            if getattr(self, key) in (None, "", []):
                raise Problem(key, "is required")
        reserved = RESERVED_ENV | ({"DATABASE_URL"} if self.database else set())
        for part in parts_of(type(self)):
            reserved |= part.reserved_env(cast(Part, self))  # an assembled entry is each of its parts
        for key in ("env", "secrets"):
            try:
                environment(getattr(self, key), key, reserved)
            except ValueError as error:
                raise Problem(key, str(error)) from None
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise Problem("secrets", f"{both[0]} is also in env")
        if self.tls and self.tls.mode == "acme" and any(d.startswith("*.") for d in self.domains or []):
            raise Problem("tls", "acme certificates are issued over HTTP-01, which cannot prove a wildcard domain")
        if self.asgi_module is not None and self.server != "asgi":
            raise Problem("asgi_module", "is for server asgi; set \"server\": \"asgi\" or remove it")
        if isinstance(self.source, GitSourceEntry):
            for key in ("asgi_module" if self.server == "asgi" else "wsgi_module", "settings_module"):
                if getattr(self, key) is None:
                    raise Problem(key, "is required with a git source (the project is not on this machine)")
        return self


class Part(Model):
    """A component's part of an app entry (deploys/components/<name>/contract.py): its fields, each
    with its form and the reason a user reads, beside AppEntry's in the entry a run validates
    (assemble). Every field has a default: an entry that leaves them out, or a removed app, has
    the part's defaults."""

    #: What each of its fields (and its nested entries' keys) must be, for a value of the wrong type.
    FORMS: ClassVar[Mapping[str, str]] = {}
    #: Its nested entries, for the inventory reference: (model, heading, what a value of it is).
    ENTRIES: ClassVar[tuple[tuple[type[Model], str, str], ...]] = ()

    def reserved_env(self) -> set[str]:
        """The environment variables the deploy sets for what the part asks for: not the app's to set."""
        return set()

    def on_several_servers(self) -> tuple[str, str] | None:
        """Why an app asking for what the part asks for cannot run on several app servers, if so:
        the field, and why."""
        return None


def assemble(parts: Iterable[type[Part]], engines: Iterable[Engine] = ()) -> type[AppEntry]:
    """The app entry with the components' parts: their fields beside AppEntry's, validated alike
    (a part's validators are its own), and a value of it is an instance of every part; and with
    the database engines of the components that bring one."""
    bases: tuple[type[Model], ...] = (AppEntry, *parts)
    # pydantic keeps one validator of a name: a part's would silently replace another's.
    for kind, names in (("fields", [name for model in bases for name in model.model_fields]),
                        ("validators", [name for model in bases for name in validators(model)])):
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise TypeError(f"{kind} declared by two parts of the contract: {', '.join(twice)}")
    engines = tuple(engines)
    database = _database_entry(engines) if engines else DatabaseEntry
    listed = " | ".join(f'"{engine.name}"' for engine in engines) or "ENGINE"
    described = f'true ({defaults.DATABASE_ENGINE}), false, or {{"engine": {listed}}}. DATABASE_URL is set either way.'
    field: Any = (bool | database, Field(True, description=described))
    contract = cast(type[AppEntry], create_model("AppEntry", __base__=bases, __module__=__name__,  # type: ignore[call-overload]
                                                 database=field))
    contract.ENGINES = {engine.name: engine for engine in engines}
    contract.DATABASE_ENTRY = database
    return contract


def _database_entry(engines: tuple[Engine, ...]) -> type[DatabaseEntry]:
    """DatabaseEntry with the engines' names as the JSON Schema and the reference show them: an
    enum, each described."""
    names: Any = Literal[tuple(engine.name for engine in engines)]  # type: ignore[valid-type]
    described = "; ".join(f"{engine.name}: {engine.description}" for engine in engines)
    return create_model("DatabaseEntry", __base__=DatabaseEntry, __module__=__name__,
                        engine=(names, Field(description=described)))


def validators(model: type[Model]) -> set[str]:
    decorators = model.__pydantic_decorators__
    return {*decorators.field_validators, *decorators.model_validators}


def parts_of(contract: type[Model]) -> list[type[Part]]:
    """The parts an assembled app entry is made of."""
    return [base for base in contract.__mro__[1:] if issubclass(base, Part) and base is not Part]


def forms(contract: type[Model]) -> dict[str, str]:
    """FORMS, with each part's and the names of the contract's engines."""
    engines = " or ".join(contract.ENGINES) if issubclass(contract, AppEntry) else ""
    return {**FORMS, "database": FORMS["database"].replace("ENGINE", engines or "ENGINE"),
            **{key: why for part in parts_of(contract) for key, why in part.FORMS.items()}}


class HostSettingsEntry(Model):
    """Host-level settings (host or group data): they end up in commands run as root."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    djangohost_root: str = Field(defaults.ROOT, description="The directory holding one home per app.")
    djangohost_group: str = Field(defaults.GROUP, description="The system group every app user belongs to.")
    djangohost_python: str = Field(
        defaults.PYTHON,
        description="The Python the virtualenvs are made with (Debian has no `python`).",
    )
    djangohost_gunicorn_version: str = Field(
        defaults.GUNICORN_VERSION,
        description="The Gunicorn added to every app whose project does not name one itself.",
    )
    djangohost_packages: list[str] = Field(
        default_factory=lambda: list(defaults.PACKAGES),
        description="Debian packages every host gets (Nginx, Supervisor, Python); packages added here beyond them "
                    "(headers a build needs, such as libpq-dev) are installed before any build.",
    )
    djangohost_database_driver: str = Field(
        defaults.DATABASE_DRIVER,
        description="The PostgreSQL driver added to an app whose project names none.",
    )
    djangohost_mariadb_driver: str = Field(
        defaults.MARIADB_DRIVER,
        description="The MariaDB driver added to an app with MariaDB whose project does not name it.",
    )
    djangohost_keep_releases: int = Field(
        defaults.KEEP_RELEASES, ge=1,
        description="Releases kept per app (the live one always among them), for rollback.",
    )
    djangohost_build_tools: bool = Field(False, description="Compilers and headers, for requirements without wheels.")
    djangohost_backup: BackupEntry = Field(
        BackupEntry(),
        description="When every app's backups are taken and how many are kept (an app's backup overrides it key by "
                    "key).",
    )
    djangohost_logs: LogsEntry = Field(LogsEntry(), description="How the logs of the host are rotated.")
    djangohost_notify: NotifyEntry = Field(NotifyEntry(), description="Where the host's alerts go: failed deploys "
                                           "and jobs, backups failed or late, Gunicorn restarted too often.")

    @field_validator("djangohost_root")
    @classmethod
    def _root(cls, value: str) -> str:
        form(ROOT_RE, value, "djangohost_root")
        if ".." in value.split("/"):
            raise ValueError(f"{value!r} must not hold ..")
        return value

    _forms = field_validator("djangohost_group", "djangohost_python", "djangohost_gunicorn_version",
                             "djangohost_database_driver", "djangohost_mariadb_driver")(formed)

    @field_validator("djangohost_backup", mode="before")
    @classmethod
    def _backup(cls, value: Any) -> Any:
        return entry(BackupEntry, value, "djangohost_backup")

    @field_validator("djangohost_logs", mode="before")
    @classmethod
    def _logs(cls, value: Any) -> Any:
        return entry(LogsEntry, value, "djangohost_logs")

    @field_validator("djangohost_notify", mode="before")
    @classmethod
    def _notify(cls, value: Any) -> Any:
        if not isinstance(value, dict):  # not shown: it may be the webhook's URL
            raise ValueError(FORMS["djangohost_notify"])
        return nested(NotifyEntry, value)

    @field_validator("djangohost_packages")
    @classmethod
    def _packages(cls, value: list[str]) -> list[str]:
        if not all(PACKAGE_RE.fullmatch(package) for package in value):
            raise ValueError(f"{value!r} {FORMS['djangohost_packages']}")
        return value


def json_schema(contract: type[AppEntry]) -> dict[str, Any]:
    """The JSON Schema of a host's data: its settings and its apps, each an entry of `contract`."""
    data = create_model("HostData", __base__=HostSettingsEntry, __module__=__name__, apps=(
        list[contract], Field(default_factory=list,  # type: ignore[valid-type]
                              description="The apps of the host (or of every host of a group, with `servers` "
                                          "naming which).")))
    return data.model_json_schema()
