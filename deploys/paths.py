"""Every path djangohost manages, named once.

An app's home (<root>/<app>) holds:

    releases/<id>/   one directory per deployed code version (id: timestamp-contenthash)
    current          link to the live release
    venvs/<key>/     one virtualenv per requirements (key: hash of python, gunicorn, requirements)
    repo/            git sources: a bare mirror of the repository, the app user's only
    venv             link to the live virtualenv
    conf/            env (environment file), djangohost_settings.py, gunicorn.conf.py
    bin/             gunicorn-start (what Supervisor runs), manage (manage.py with the app's env)
    logs/ run/ static/ media/
"""

from __future__ import annotations

from deploys.inventory import App

NGINX_AVAILABLE = "/etc/nginx/sites-available"
NGINX_ENABLED = "/etc/nginx/sites-enabled"
NGINX_DEBIAN_DEFAULT = f"{NGINX_ENABLED}/default"
NGINX_DEFAULT_SITE = f"{NGINX_AVAILABLE}/djangohost-default"
NGINX_DEFAULT_LINK = f"{NGINX_ENABLED}/djangohost-default"
SUPERVISOR_CONF_D = "/etc/supervisor/conf.d"
# Each app's certificate and key, where its Nginx site reads them (root only).
TLS_DIR = "/etc/djangohost/tls"
# Where certbot answers ACME HTTP-01 challenges, served by every app's port-80 server.
ACME_WEBROOT = "/var/lib/djangohost/acme"
CERTBOT_LIVE = "/etc/letsencrypt/live"
CERTBOT_RENEWAL = "/etc/letsencrypt/renewal"
CERTBOT_DEPLOY_HOOKS = "/etc/letsencrypt/renewal-hooks/deploy"
CERTBOT_DEPLOY_HOOK = f"{CERTBOT_DEPLOY_HOOKS}/djangohost-nginx-reload"
# What each reload or restart last applied (see deploys.ops.Stamp); root only.
STAMPS = "/var/lib/djangohost/applied"
# Where files are uploaded before they take their place: 0700, owned by the user pyinfra logs in
# as (under sudo, the SSH user can write nowhere else that others cannot read).
UPLOADS = "/var/lib/djangohost/uploads"
# Marks a virtualenv whose installs all succeeded; a half-built one is rebuilt.
VENV_COMPLETE = ".djangohost-complete"
# In a release: the key of the virtualenv it was checked with (what a rollback links back).
RELEASE_VENV = ".djangohost-venv"
# In a release of a git source: the commit it was exported from.
RELEASE_COMMIT = ".djangohost-commit"
# Directories of an app's home: (name, owner, group, mode). "app" stands for the app's user and
# group. Nginx (www-data) traverses the home (o+x) to reach run/, static/ and media/ only.
APP_DIRS = (
    ("", "root", "app", "751"),
    ("releases", "root", "app", "750"),
    ("venvs", "root", "app", "750"),
    ("conf", "root", "app", "750"),
    ("bin", "root", "app", "750"),
    ("logs", "root", "app", "750"),
    ("run", "app", "www-data", "750"),
    ("static", "app", "www-data", "750"),
    ("media", "app", "www-data", "750"),
)


def app_dirs(app: App) -> list[tuple[str, str, str, str]]:
    """The directories of an app's home as (path, owner, group, mode)."""

    def who(name: str) -> str:
        return app.name if name == "app" else name

    return [(app.path(name), who(owner), who(group), mode) for name, owner, group, mode in APP_DIRS]


def env_file(app: App) -> str:
    return app.path("conf", "env")


def settings_file(app: App) -> str:
    return app.path("conf", "djangohost_settings.py")


def gunicorn_config(app: App) -> str:
    return app.path("conf", "gunicorn.conf.py")


def gunicorn_start(app: App) -> str:
    return app.path("bin", "gunicorn-start")


def manage(app: App) -> str:
    return app.path("bin", "manage")


def current(app: App) -> str:
    return app.path("current")


def release(app: App, release_id: str) -> str:
    return app.path("releases", release_id)


def mirror(app: App) -> str:
    return app.path("repo")


def deploy_key(app: App) -> str:
    return app.path("conf", "deploy_key")


def venv(app: App) -> str:
    return app.path("venv")


def venv_dir(app: App, key: str) -> str:
    return app.path("venvs", key)


def supervisor_program(app: App) -> str:
    return f"{SUPERVISOR_CONF_D}/{app.name}.conf"


def tls_dir(app: App) -> str:
    return f"{TLS_DIR}/{app.name}"


def tls_cert(app: App) -> str:
    return f"{tls_dir(app)}/fullchain.pem"


def tls_key(app: App) -> str:
    return f"{tls_dir(app)}/privkey.pem"


def nginx_site(app: App) -> str:
    return f"{NGINX_AVAILABLE}/{app.name}"


def nginx_enabled(app: App) -> str:
    return f"{NGINX_ENABLED}/{app.name}"


def app_paths(app: App) -> list[str]:
    """Every path of an app that HostState reports on."""
    return [
        *(path for path, *_ in app_dirs(app)),
        settings_file(app),
        gunicorn_config(app),
        gunicorn_start(app),
        manage(app),
        current(app),
        venv(app),
        *([mirror(app), deploy_key(app)] if app.git else []),
        tls_dir(app),
        *([tls_cert(app), tls_key(app)] if app.tls else []),
        supervisor_program(app),
        nginx_site(app),
        nginx_enabled(app),
        app.socket,
        *app_stamps(app),
    ]


# The reactions that keep a stamp (deploys.ops.Stamp): per app, and for the whole host.
APP_STAMPS = ("release", "program", "restart", "reload", "healthy", "tls", "rollback")
HOST_STAMPS = ("nginx",)


def stamp(kind: str, app: App | None = None) -> str:
    """Where the reaction `kind` (of `app`, or of the host) records what it applied."""
    if kind not in (APP_STAMPS if app else HOST_STAMPS):
        raise ValueError(f"no such stamp: {kind}")
    return f"{STAMPS}/{app.name}.{kind}" if app else f"{STAMPS}/{kind}"


def app_stamps(app: App) -> list[str]:
    return [stamp(kind, app) for kind in APP_STAMPS]


HOST_PATHS = [NGINX_DEBIAN_DEFAULT, NGINX_DEFAULT_SITE, NGINX_DEFAULT_LINK, STAMPS, UPLOADS, TLS_DIR, ACME_WEBROOT,
              CERTBOT_DEPLOY_HOOKS, CERTBOT_DEPLOY_HOOK,
              *(stamp(kind) for kind in HOST_STAMPS)]
