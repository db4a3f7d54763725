"""Every user-tunable default of djangohost, declared once.

Host-level settings are read from host data (set them per host or per group in the inventory);
app-level defaults apply to each entry of the host's `apps` list.

An app entry (a dict in host data `apps`):

    name              str, required. ^[a-z][a-z0-9_]{0,30}$. The system user, its home
                      (<root>/<name>), the Supervisor program and the Nginx site are named after it.
    domains           list[str], required, non-empty. Host names the app answers to; unique across
                      the apps of a host. The first one is the canonical name.
    source            required. Either a local directory holding the Django project (the one
                      with manage.py; a relative path resolves against the directory pyinfra runs
                      in), or a git repository fetched on the host by the app's user:
                      {"git": URL, "ref": BRANCH_TAG_OR_SHA, "deploy_key": PATH (optional, a
                      private key on this machine, installed as <home>/conf/deploy_key, 0400,
                      the app's user only; SSH host keys are trusted on first use)}.
                      A branch deploys its newest commit on every run.
    wsgi_module       str. Default (local sources): <package>.wsgi, where <package> is the only
                      directory of the source holding a wsgi.py. Required with a git source, as
                      is settings_module.
    settings_module   str. Default: what the project serves with: the module its wsgi.py names
                      as DJANGO_SETTINGS_MODULE's default, else <package>.settings, else
                      <package>.settings.production (or .prod) of a settings package. When none
                      is found, the error lists the settings modules there are.
    requirements      str. Requirements file inside the source. Default: requirements.txt when
                      the source has one (for git: at the deployed commit), otherwise none
                      (Gunicorn is installed either way).
    workers           int >= 1. Gunicorn worker processes. Default: 2 x CPU cores + 1 of the host.
    env               dict[str, str]. Extra environment variables for the app; shown in diffs.
    secrets           dict[str, str]. Environment variables whose values are secret: written to
                      the same environment file, masked in every diff and never printed.
                      SECRET_KEY may be given here; otherwise it is generated on the host once.
    database          true, false or {"engine": "postgresql" | "mariadb"}. Default true, which
                      is PostgreSQL: a role and database named after the app, reached over the
                      local socket with peer authentication. "mariadb": an account and database
                      named after the app, reached over the local socket with the unix_socket
                      plugin (see deploys.components.mariadb). DATABASE_URL is set either way.
    client_max_body_size  str. Nginx's upload limit for the app, e.g. "10m". Default below.
    health_path       str starting with "/". What the health gate and the status view request
                      through Nginx on each domain. Default "/".
    health_timeout    number > 0. Seconds the health gate waits for the app to answer below 500
                      after it was (re)started or reloaded. Default below.
    backup            false or dict. When the app's backups are taken and how many are kept; the
                      keys and defaults are djangohost_backup's (below), whose values the entry's
                      override one by one. false: no scheduled backups (a dump is still taken
                      before every migration that changes the schema).
    processes         dict[str, str | dict]. Further long-running processes, each run by
                      Supervisor as the app's user in the live release, with its virtualenv's
                      commands (and bin/manage) on PATH and its environment:
                        {"worker": "celery -A shop worker -l info",
                         "beat": {"command": "celery -A shop beat", "stop_wait": 30}}
                      Names ^[a-z][a-z0-9_]{0,30}$, not web or redis; the program is <app>-<name>.
                      stop_wait: seconds a stopping process is given to finish its work (only its
                      main process gets the signal: Celery's warm shutdown) before it and its
                      children are killed. Default below.
    broker            true or {"maxmemory": SIZE}. A Redis of the app's own, run as its user on a
                      unix socket in its run/ directory that no other app can open; REDIS_URL,
                      CELERY_BROKER_URL and CELERY_RESULT_BACKEND point at it. Default false.
    schedule          list of {"name": NAME, "command": COMMAND, "at": hourly|daily|weekly|monthly}
                      or {..., "cron": "*/15 * * * *"}. Jobs cron starts as the app's user, in the
                      live release with its environment, never two runs of one job at once; their
                      output goes to logs/job-<name>.log, their last run to the status view.
    limits            {"memory": "512M", "cpu": "50%", "tasks": 200}, any of them. What the app's
                      processes (web, workers, broker, jobs) use together, at most: a systemd
                      slice per app (see deploys.components.limits); a host without systemd refuses them.
    tls               dict. HTTPS for all the app's domains; port 80 then redirects (301) to
                      https, except ACME challenges. One of:
                        {"mode": "provided", "cert": PATH, "key": PATH}  files on this machine
                            (the certificate chain, then its key: installed 0600 root)
                        {"mode": "self-signed"}  made on the host once, kept across runs
                        {"mode": "acme", "email": EMAIL, "directory": URL}  from an ACME server
                            (directory default: Let's Encrypt) with certbot through the running
                            Nginx (webroot); certbot's timer renews and the deploy hook reloads
                      Any mode takes "hsts_max_age": seconds of Strict-Transport-Security
                      (default below; 0: no header). Django is told the request was secure
                      (SECURE_PROXY_SSL_HEADER, secure cookies, CSRF_TRUSTED_ORIGINS).
"""

from __future__ import annotations

# --- host level -------------------------------------------------------------------------------

#: Directory holding one home per app: <root>/<app name>.
ROOT = "/webapps"
#: System group every app user belongs to (the seed's `webapps`).
GROUP = "webapps"
#: Python interpreter the virtualenvs are created with (Debian has no `python` command).
PYTHON = "python3"
#: Gunicorn version installed into every app's virtualenv.
GUNICORN_VERSION = "23.0.0"
#: uv, which builds the virtualenvs: installed once per host from PyPI, in a directory of its own
#: (paths.UV). Like pip, it reads `--index-url` lines of a requirements file; unlike pip, not
#: /etc/pip.conf: a host's own package index goes in /etc/uv/uv.toml.
UV_VERSION = "0.13.9"
#: Releases kept per app (the live one always among them), for rollback.
KEEP_RELEASES = 5
#: Database engines an app may choose.
DATABASE_ENGINES = ("postgresql", "mariadb")
#: PostgreSQL driver added to the virtualenv of every app with a database.
DATABASE_DRIVER = "psycopg[binary]>=3.2,<4"
#: Debian package of the database server, installed on hosts where an app has a database.
POSTGRESQL_PACKAGE = "postgresql"
#: MariaDB driver added to the virtualenv of every app with a MariaDB database: pure Python,
#: so it needs no compiler or client library (see the README).
MARIADB_DRIVER = "PyMySQL>=1.1,<2"
#: Debian package of MariaDB, installed on hosts where an app chooses it.
MARIADB_PACKAGE = "mariadb-server"
#: MariaDB's socket on Debian 12 and 13.
MARIADB_SOCKET = "/run/mysqld/mysqld.sock"
#: Debian packages every host needs: the servers, Python, and pip's wheel, which installs uv (uv
#: makes the virtualenvs itself: python3-venv and the five packages it brings are not needed).
PACKAGES = (
    "nginx",
    "supervisor",
    "python3",
    "python3-pip-whl",
)
#: Of those, what the apps' builds need: installed first; the others are installed while the
#: apps build.
BUILD_PACKAGES = ("python3", "python3-pip-whl")
#: What uv needs to compile a requirement that has no wheel; installed only where the host's
#: `djangohost_build_tools` is true (default false: most projects install from wheels alone,
#: and the compilers are the largest part of a first deploy).
BUILD_TOOLS = ("build-essential", "python3-dev")

#: Rotation of every log djangohost writes (host data `djangohost_logs`, merged over these):
#:   size  a log is rotated once it is larger (Supervisor rotates the process logs itself at
#:         that size; logrotate, every 10 minutes, the Nginx and job logs);
#:   keep  rotated logs kept per log.
LOGS: dict[str, object] = {"size": "10M", "keep": 5}

#: Backups of every app (see deploys.components.backups and the README's Backups): each key can be set per
#: host (host data `djangohost_backup`, merged over these) and per app (its `backup` entry).
#:   at               hourly, daily (03:MM) or weekly (Sundays 03:MM), MM spread by app name;
#:   cron             or five cron fields ("30 2 * * *") instead of `at`;
#:   keep_daily       the newest backup of each of the last N days that have one;
#:   keep_weekly      and of each of the last N ISO weeks;
#:   keep_migrations  dumps taken before a migration, the newest N;
#:   media            whether the media directory is archived with the database;
#:   age_recipient    an age public key (age1...): pulled backups are encrypted to it on the host
#:                    before they leave it (see deploys/backup.py).
BACKUP: dict[str, object] = {"at": "daily", "keep_daily": 7, "keep_weekly": 4, "keep_migrations": 5,
                             "media": True, "age_recipient": None}


# --- app level --------------------------------------------------------------------------------

#: Nginx `client_max_body_size` of an app.
CLIENT_MAX_BODY_SIZE = "10m"
#: Seconds a stopping process (`processes`) is given to finish its work before it is killed:
#: a Celery worker finishes the tasks it runs.
PROCESS_STOP_WAIT = 600
#: Memory an app's Redis (`broker`) may use; past it, writes fail rather than tasks vanish.
BROKER_MAXMEMORY = "64M"

#: Path the health gate requests on each domain of an app.
HEALTH_PATH = "/"
#: Seconds the health gate waits for a (re)started app to answer.
HEALTH_TIMEOUT = 60
#: Strict-Transport-Security max-age of an app with TLS (two years, as hstspreload.org asks).
HSTS_MAX_AGE = 63072000
#: ACME directory of apps with "mode": "acme" (Let's Encrypt's production server).
ACME_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
#: Requirements file looked for in an app's source when the entry names none.
REQUIREMENTS_FILE = "requirements.txt"
