"""Every user-tunable default of djangohost, declared once.

Host-level settings are read from host data (set them per host or per group in the inventory);
app-level defaults apply to each entry of the host's `apps` list. What each field is and which
form it takes is in the contract's models (deploys/model/schema.py), and in the inventory
reference written from them (docs/inventory.md).
"""

from __future__ import annotations

from typing import Literal

# --- host level -------------------------------------------------------------------------------

#: Directory holding one home per app: <root>/<app name>.
ROOT = "/webapps"
#: System group every app user belongs to (the seed's `webapps`).
GROUP = "webapps"
#: Python interpreter the virtualenvs are created with (Debian has no `python` command).
PYTHON = "python3"
#: Gunicorn version installed into every app's virtualenv.
GUNICORN_VERSION = "23.0.0"
#: What runs an ASGI app (`"server": "asgi"`) inside Gunicorn, added unless the project names it:
#: the maintained worker class (uvicorn.workers is deprecated), and uvicorn with its standard
#: extras (websockets, httptools, uvloop): without a WebSocket library uvicorn refuses upgrades.
UVICORN_WORKER_VERSION = "0.4.0"
UVICORN_VERSION = "0.55.0"
#: Added to an ASGI app whose project names uvicorn without its standard extras nor a WebSocket
#: library: uvicorn alone answers every WebSocket with 404 (its oldest release it supports).
WEBSOCKETS_REQUIREMENT = "websockets>=10.4"
#: Channels' layer in the app's Redis, added to an ASGI app with a broker whose project names
#: channels but not channels-redis.
CHANNELS_REDIS_REQUIREMENT = "channels-redis>=4.2,<5"
#: uv, which builds the virtualenvs: installed once per host from PyPI, in a directory of its own
#: (paths.UV). Like pip, it reads `--index-url` lines of a requirements file; unlike pip, not
#: /etc/pip.conf: a host's own package index goes in /etc/uv/uv.toml.
UV_VERSION = "0.13.9"
#: Releases kept per app (the live one always among them), for rollback.
KEEP_RELEASES = 5
#: The engine of `database: true` (each engine is a component's: deploys/components/*/contract.py).
DATABASE_ENGINE = "postgresql"
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
#:                    before they leave it (see deploys/backup.py);
#:   offsite          where restic copies each good backup off the host (deploys.components.offsite):
#:                    {"repository": BASE, "password": THE_APP'S_OWN, ...}, merged key by key.
BACKUP: dict[str, object] = {"at": "daily", "keep_daily": 7, "keep_weekly": 4, "keep_migrations": 5,
                             "media": True, "age_recipient": None, "offsite": None}
#: When restic check reads an app's off-host repository: weekly, Sundays 04:MM (MM by app name).
OFFSITE_CHECK_HOUR = 4


# --- app level --------------------------------------------------------------------------------

#: Seconds a stopping process (`processes`) is given to finish its work before it is killed:
#: a Celery worker finishes the tasks it runs.
PROCESS_STOP_WAIT = 600

#: What serves an app: wsgi (Gunicorn's sync workers) or asgi (Gunicorn with uvicorn's worker).
SERVER: Literal["wsgi", "asgi"] = "wsgi"
#: Strict-Transport-Security max-age of an app with TLS (two years, as hstspreload.org asks).
HSTS_MAX_AGE = 63072000
#: ACME directory of apps with "mode": "acme" (Let's Encrypt's production server).
ACME_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
#: Requirements file looked for in an app's source when the entry names none.
REQUIREMENTS_FILE = "requirements.txt"
