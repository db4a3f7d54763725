"""Every path djangohost manages, named once.

An app's home (<root>/<app>) holds:

    releases/<id>/   one directory per deployed code version (id: timestamp-contenthash)
    current          link to the live release
    venvs/<key>/     one virtualenv per requirements (key: hash of python, gunicorn, requirements)
    venv             link to the live virtualenv
    conf/            env (environment file), djangohost_settings.py, gunicorn.conf.py; next/: the
                     same, staged for a release until its candidate check passed; redis.conf
    bin/             gunicorn-start (what Supervisor runs), gunicorn-reload, manage (manage.py
                     with the app's env), compress-static, release (readies a release),
                     run (a command of the app's processes, jobs and release commands), job (one
                     run of a job)
    logs/ run/ static/ media/ tmp/ (and redis/ with a broker: deploys.components.broker)

Its build identity, the user `_<app>` (a name no app can have), has a home of its own,
/var/lib/djangohost/build/<app> (0700), holding the git mirror (repo/), the deploy key and the
build caches: it fetches the app's code and builds its virtualenvs, so no build script runs as
root, and the app's user, which cannot write there, cannot choose the code root deploys.
"""

from __future__ import annotations

from deploys.model import defaults
from deploys.model.inventory import App
from deploys.model.programs import backup_tool

NGINX_CONF = "/etc/nginx/nginx.conf"
NGINX_AVAILABLE = "/etc/nginx/sites-available"
# Each app's new site, before it is checked and enabled (Nginx does not read it).
NGINX_STAGED = "/etc/nginx/djangohost-staged"
NGINX_CHECK = "/usr/local/sbin/djangohost-nginx-check"
NGINX_ENABLED = "/etc/nginx/sites-enabled"
NGINX_DEBIAN_DEFAULT = f"{NGINX_ENABLED}/default"
NGINX_DEFAULT_SITE = f"{NGINX_AVAILABLE}/djangohost-default"
NGINX_DEFAULT_LINK = f"{NGINX_ENABLED}/djangohost-default"
# Each app's Nginx access and error logs: <NGINX_LOGS>/<app>/ (www-data's, the app's group reads).
NGINX_LOGS = "/var/log/nginx/djangohost"
SUPERVISOR_CONF_D = "/etc/supervisor/conf.d"
# Each app's certificate and key, where its Nginx site reads them (root only).
TLS_DIR = "/etc/djangohost/tls"
# Where certbot answers ACME HTTP-01 challenges, served by every app's port-80 server.
ACME_WEBROOT = "/var/lib/djangohost/acme"
CERTBOT_LIVE = "/etc/letsencrypt/live"
CERTBOT_RENEWAL = "/etc/letsencrypt/renewal"
CERTBOT_DEPLOY_HOOKS = "/etc/letsencrypt/renewal-hooks/deploy"
CERTBOT_DEPLOY_HOOK = f"{CERTBOT_DEPLOY_HOOKS}/djangohost-nginx-reload"
# What each reload or restart last applied (see deploys.engine.ops.Stamp); root only.
STAMPS = "/var/lib/djangohost/applied"
# The homes of the apps' build identities (see builder()).
BUILD = "/var/lib/djangohost/build"
# Runs a deploy's long steps (the packages' install, builds, candidate checks) in the background,
# side by side, and waits for them; each step's output, exit status and process (root only).
BACKGROUND_TOOL = "/usr/local/sbin/djangohost-background"
BACKGROUND = "/var/lib/djangohost/background"
# Root's own directory of locks (0700; see templates/engine/run-dir.sh.j2): the host's run lock, the
# backups' and the jobs' locks. Never /run/lock, where every user may create and hold names.
RUN_DIR = str(backup_tool.LOCKS)
# How root reads a file another user controls, and escapes the text such a user controls before
# it reaches the operator's terminal (templates/engine/djangohost-safe.py, see deploys.engine.safe).
SAFE_TOOL = backup_tool.SAFE_TOOL
# Tools djangohost installs on the host: uv, which the build identities run (root's, read-only).
TOOLS = "/usr/local/lib/djangohost"
UV = f"{TOOLS}/uv-{defaults.UV_VERSION}"
UV_BIN = f"{UV}/bin/uv"
# Debian's wheels of pip and setuptools, which its venv module installs from.
PIP_WHEELS = "/usr/share/python-wheels"
# Programs of djangohost's the deploy runs on the host (read-only to all): what decides a
# virtualenv and builds it (run by the build identities), and the checks of an app's answers.
DEPENDENCIES = f"{TOOLS}/dependencies.py"
HEALTH = f"{TOOLS}/health.py"
# Publishes a release's static files by content (run as the app's user, see bin/release).
PUBLISH_STATIC = f"{TOOLS}/publish-static.py"
# Builds a virtualenv as the app's build identity (root only).
BUILD_TOOL = "/usr/local/sbin/djangohost-build"
# `migrate` under a lock in the database, for apps whose database is on the database server.
MIGRATE_LOCKED = f"{TOOLS}/migrate_locked.py"
# Where files are uploaded before they take their place: 0700, owned by the user pyinfra logs in
# as (under sudo, the SSH user can write nowhere else that others cannot read).
UPLOADS = "/var/lib/djangohost/uploads"
# The host's firewall (deploys.components.firewall): djangohost's own nftables table, and the unit that loads
# it at boot (with systemd).
ETC = "/etc/djangohost"
FIREWALL = f"{ETC}/firewall.nft"
FIREWALL_UNIT = "/etc/systemd/system/djangohost-firewall.service"
# A database server's (deploys.components.dbserver): its TLS certificate and key, named after the address
# they are for, its pg_hba.conf, and each served app's password as a libpq password file line
# (root only); the tool that makes those passwords.
DB_SERVER = "/etc/djangohost/postgresql"
DB_HBA = f"{DB_SERVER}/pg_hba.conf"
DB_PASSWORD_TOOL = "/usr/local/sbin/djangohost-db-password"
# On the load balancer: what takes an app server out of its upstreams and back (deploys.components.balancer.roll).
LB_MEMBER = "/usr/local/sbin/djangohost-lb-member"
# Backups: one directory per app (root only), the tool that takes and restores them, each app's
# backup settings (root only) and the schedule.
BACKUPS = str(backup_tool.BACKUPS)
BACKUP_TOOL = "/usr/local/sbin/djangohost-backup"
BACKUP_ENGINES = str(backup_tool.ENGINES)
BACKUP_CONFIG = str(backup_tool.CONFIG)
BACKUP_CRON = "/etc/cron.d/djangohost-backup"
BACKUP_LOG = "/var/log/djangohost-backup.log"
# Off-host copies (deploys.components.offsite): the tool that pushes, checks and fetches them with
# restic, each app's repository settings and credentials (root only), the schedule of its checks.
OFFSITE_TOOL = "/usr/local/sbin/djangohost-offsite"
OFFSITE_CONFIG = "/etc/djangohost/offsite"
OFFSITE_CRON = "/etc/cron.d/djangohost-offsite"
# What each app's last push and check did (root only; the status view reads it).
OFFSITE_STATUS = "/var/lib/djangohost/offsite"
# Each scheduled job's last run, "<end time> <exit status>" (root only; the status view reads it).
JOBS = "/var/lib/djangohost/jobs"
# Rotation of the Nginx and job logs (Supervisor rotates the process logs itself).
LOGROTATE_CONF = "/etc/djangohost/logrotate.conf"
LOGROTATE_CRON = "/etc/cron.d/djangohost-logrotate"
LOGROTATE_STATE = "/var/lib/djangohost/logrotate.state"
# Marks a virtualenv whose installs all succeeded; a half-built one is rebuilt.
VENV_COMPLETE = ".djangohost-complete"
# In a release: the key of the virtualenv it was checked with (what a rollback links back).
RELEASE_VENV = ".djangohost-venv"
# In a release of a git source: the commit it was exported from.
RELEASE_COMMIT = ".djangohost-commit"
# Root writes these into releases: a source's own files of these names are never shipped or
# unpacked, so none can be a link that redirects the write (to /etc/passwd, say).
RELEASE_MARKERS = (RELEASE_VENV, RELEASE_COMMIT)
# Directories of an app's home: (name, owner, group, mode). "app" stands for the app's user and
# group. Nginx (www-data) traverses the home (o+x) to reach run/, static/ and media/ only.
APP_DIRS = (
    ("", "root", "app", "751"),
    ("releases", "root", "app", "750"),
    # o+x: the build identity reaches the virtualenv it builds (then root's, 0750)
    ("venvs", "root", "app", "751"),
    ("conf", "root", "app", "750"),
    ("conf/next", "root", "app", "750"),
    ("bin", "root", "app", "750"),
    ("logs", "root", "app", "750"),
    ("run", "app", "www-data", "750"),
    ("static", "app", "www-data", "750"),
    ("media", "app", "www-data", "750"),
    # the app's own scratch space: a release's static files, collected before they are published
    ("tmp", "app", "app", "700"),
)




def db_cert(address: str) -> str:
    return f"{DB_SERVER}/server-{address}.crt"


def db_key(address: str) -> str:
    return f"{DB_SERVER}/server-{address}.key"


def db_password(app: App) -> str:
    """On the database server: the app's password file line."""
    return f"{DB_SERVER}/{app.name}.pgpass"


def pgpass(app: App) -> str:
    """On an app server: the app's copy of its password file line (the app's user only)."""
    return app.path("conf", "pgpass")


def db_server_cert(app: App) -> str:
    """On an app server: the database server's certificate, which the app checks the server against."""
    return app.path("conf", "db-server.crt")


def app_dirs(app: App) -> list[tuple[str, str, str, str]]:
    """The directories of an app's home as (path, owner, group, mode)."""

    def who(name: str) -> str:
        return app.name if name == "app" else name

    return [(app.path(name), who(owner), who(group), mode) for name, owner, group, mode in APP_DIRS]


# The configuration a release runs with, in conf/: the environment file, the settings module and
# Gunicorn's settings. A deploy writes them to conf/next/ first; the new release's migrations and
# candidate check run with those, and only when the check passed are they copied into conf/.
CONF_FILES = ("env", "djangohost_settings.py", "gunicorn.conf.py")


def conf(app: App, staged: bool = False) -> str:
    return app.path("conf", "next") if staged else app.path("conf")


def env_file(app: App, staged: bool = False) -> str:
    return f"{conf(app, staged)}/env"


def settings_file(app: App, staged: bool = False) -> str:
    return f"{conf(app, staged)}/djangohost_settings.py"


def gunicorn_config(app: App, staged: bool = False) -> str:
    return f"{conf(app, staged)}/gunicorn.conf.py"


def gunicorn_start(app: App) -> str:
    return app.path("bin", "gunicorn-start")


def manage(app: App) -> str:
    return app.path("bin", "manage")


def gunicorn_reload(app: App) -> str:
    return app.path("bin", "gunicorn-reload")


def gunicorn_reloaded(app: App) -> str:
    """Where the app's Gunicorn master says that a reload's new workers took over."""
    return app.path("run", "gunicorn.reloaded")


def compress_static(app: App) -> str:
    return app.path("bin", "compress-static")


def release_script(app: App) -> str:
    """What readies a release before it goes live (root runs it)."""
    return app.path("bin", "release")


def collected_static(app: App) -> str:
    """Where a release's static files are collected before they are published in static/."""
    return app.path("tmp", "static")


def run_script(app: App) -> str:
    """What runs an app's processes and jobs: a command in its live release, as its user."""
    return app.path("bin", "run")


def job_script(app: App) -> str:
    return app.path("bin", "job")


def process_log(app: App, process: str) -> str:
    """What Supervisor writes of one of the app's programs: "gunicorn", or a process's name."""
    return app.path("logs", f"{process}.log")


def job_log(app: App, job: str) -> str:
    """What each run of the job `job` writes (templates/schedule/job.j2)."""
    return app.path("logs", f"job-{job}.log")


def nginx_log(app: App, kind: str) -> str:
    """The app's Nginx log `kind`: access or error (templates/nginx/site.conf.j2)."""
    return f"{nginx_logs(app)}/{kind}.log"


def jobs_cron(app: App) -> str:
    return f"/etc/cron.d/djangohost-jobs-{app.name}"


def job_records(app: App) -> str:
    return f"{JOBS}/{app.name}"


def slice_unit(app: App) -> str:
    return f"/etc/systemd/system/djangohost-{app.name}.slice"


def broker_config(app: App) -> str:
    return app.path("conf", "redis.conf")


def current(app: App) -> str:
    return app.path("current")


def release(app: App, release_id: str) -> str:
    return app.path("releases", release_id)


def builder(app: App) -> str:
    return f"_{app.name}"


def build_home(app: App) -> str:
    return f"{BUILD}/{app.name}"


def mirror(app: App) -> str:
    return f"{build_home(app)}/repo"


def deploy_key(app: App) -> str:
    return f"{build_home(app)}/deploy_key"


def build_work(app: App) -> str:
    """Where the builder gets a copy of the release to build its virtualenv from."""
    return f"{build_home(app)}/src"


def app_owned_mirror(app: App) -> list[str]:
    """Where djangohost kept an app's mirror and deploy key when the app's user owned them."""
    return [app.path("repo"), app.path("conf", "deploy_key")]


def venv(app: App) -> str:
    return app.path("venv")


def venv_dir(app: App, key: str) -> str:
    return app.path("venvs", key)


def supervisor_program(app: App) -> str:
    return f"{SUPERVISOR_CONF_D}/{app.name}.conf"


def supervisor_processes(app: App) -> str:
    return f"{SUPERVISOR_CONF_D}/{app.name}-processes.conf"


def supervisor_broker(app: App) -> str:
    return f"{SUPERVISOR_CONF_D}/{app.name}-redis.conf"


def backup_config(app: App) -> str:
    return f"{BACKUP_CONFIG}/{app.name}.json"


def offsite_file(app: App, kind: str) -> str:
    """An app's offsite file (root only): json (the settings), password, ssh_key or known_hosts."""
    return f"{OFFSITE_CONFIG}/{app.name}.{kind}"


def offsite_files(app: App) -> list[str]:
    return [offsite_file(app, kind) for kind in ("json", "password", "ssh_key", "known_hosts")]


def tls_dir(app: App) -> str:
    return f"{TLS_DIR}/{app.name}"


def tls_cert(app: App) -> str:
    return f"{tls_dir(app)}/fullchain.pem"


def tls_key(app: App) -> str:
    return f"{tls_dir(app)}/privkey.pem"


def tls_staged(app: App) -> str:
    """Where provided certificate files wait until Nginx accepted them (see deploys.components.nginx)."""
    return f"{tls_dir(app)}/next"


def nginx_site(app: App) -> str:
    return f"{NGINX_AVAILABLE}/{app.name}"


def nginx_enabled(app: App) -> str:
    return f"{NGINX_ENABLED}/{app.name}"


def nginx_staged(app: App) -> str:
    return f"{NGINX_STAGED}/{app.name}"


def nginx_logs(app: App) -> str:
    return f"{NGINX_LOGS}/{app.name}"


def guarded_paths(app: App) -> list[tuple[str, str]]:
    """The paths of an app that HostState reports on which lie in a tree another user writes (the
    app's run/, its build identity's home), as (a directory of root's, the path below it): root
    reads them only with djangohost-safe, never through a link, a FIFO or a file grown huge."""
    def below(directory: str, path: str) -> tuple[str, str]:
        return directory, path.removeprefix(f"{directory}/")

    return [below(app.home, app.socket),
            *([below(BUILD, mirror(app)), below(BUILD, deploy_key(app))] if app.git else [])]




def stamp(kind: str, app: App | None = None) -> str:
    """Where the reaction `kind` (of `app`, or of the host) records what it applied (deploys.engine.ops.Stamp;
    the component that keeps it watches it)."""
    return f"{STAMPS}/{app.name}.{kind}" if app else f"{STAMPS}/{kind}"


def step(kind: str, app: App) -> str:
    """The name of the app's background step `kind` (see BACKGROUND_TOOL); its files are
    BACKGROUND/<name>.*"""
    return f"{app.name}.{kind}"


def backup_engine(app: App) -> str:
    """The backup tool's part for the app's database engine (App.engine.backup, shipped)."""
    return f"{BACKUP_ENGINES}/{app.database}.py"
