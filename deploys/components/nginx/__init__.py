"""Nginx in front: one site per app, a default server that refuses unknown hosts, a checked reload."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys.components import Component, Packages, Service
from deploys.components.nginx.contract import NginxPart
from deploys.engine import ops
from deploys.engine.ops import Guard, Stamp, react, relink, sha256
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App, HostSettings
from deploys.model.programs import TEMPLATES
from facts.state import PathState, State

#: Nginx's brotli_static (Debian's module) and the brotli command that makes the copies it sends.
# brotli makes the static files' copies (bin/compress-static), the module serves them.
BROTLI = "brotli"
PACKAGES = ["libnginx-mod-http-brotli-static", BROTLI]

def _packages(apps: Sequence[App], settings: HostSettings) -> Packages:
    """Brotli before the apps' checks, which make the static files' copies."""
    return Packages(checks=(BROTLI,), others=tuple(PACKAGES))


#: The apps' basic authentication users, a file per app: root's, Nginx's group reads them.
LOGINS = "/etc/nginx/djangohost-logins"


def logins(app: App) -> str:
    return f"{LOGINS}/{app.name}"


#: Where an app's own error pages are published, in its static files (templates/app/release.j2).
ERROR_PAGES = "djangohost-errors"

#: Apps in maintenance (deploys/maintenance.py): a file per app, whose presence Nginx checks.
MAINTENANCE = "/etc/nginx/djangohost-maintenance"
#: Seconds a visitor is told to wait (Retry-After) while an app is in maintenance.
RETRY_AFTER = 600


def maintenance_flag(app: App) -> str:
    return f"{MAINTENANCE}/{app.name}"


def _watched(app: App) -> Sequence[str]:
    return [paths.nginx_site(app), paths.nginx_enabled(app), paths.nginx_staged(app), paths.nginx_logs(app),
            paths.stamp("site", app), logins(app), maintenance_flag(app)]


SERVICE = Service("nginx", "kill -0 $(cat /run/nginx.pid 2>/dev/null) 2>/dev/null")

COMPONENT = Component(
    "nginx", contract=NginxPart, packages=_packages, watched=_watched,
    services=lambda apps: [SERVICE],
    host_paths=(paths.NGINX_CONF, paths.NGINX_STAGED, paths.NGINX_LOGS, paths.NGINX_CHECK, paths.NGINX_DEBIAN_DEFAULT,
                paths.NGINX_DEFAULT_SITE, paths.NGINX_DEFAULT_LINK, paths.stamp("nginx"), LOGINS))

# A checked reload that returns once the new workers took over (templates/nginx/reload.sh).
RELOAD = (TEMPLATES / "nginx" / "reload.sh").read_text()


# Connections per Nginx worker (Debian's nginx.conf has 768).
WORKER_CONNECTIONS = 2048

# Mozilla's "intermediate" TLS policy: TLS 1.2 and 1.3, forward-secret AEAD ciphers only.
TLS_PROTOCOLS = "TLSv1.2 TLSv1.3"
TLS_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])


def http2_directive(state: State) -> bool:
    """Whether HTTP/2 is switched on by `http2 on;` (nginx 1.25.1 and later: Debian 13) rather than
    a parameter of `listen`, which those versions warn about. Without a version to go by (no
    package lists yet), Debian's release tells."""
    if state.nginx_version:
        return state.nginx_version >= (1, 25, 1)
    return state.debian_version >= 13


def site_conf(app: App, http2_on: bool) -> str:
    """The app's Nginx site (templates/nginx/site.conf.j2)."""
    return render("nginx/site.conf.j2", app=app, site=app.part(NginxPart), logins=logins(app),
                  maintenance=maintenance_flag(app), retry_after=RETRY_AFTER, pages_dir=ERROR_PAGES,
                  acme_webroot=paths.ACME_WEBROOT, logs=paths.nginx_logs(app), tls_cert=paths.tls_cert(app),
                  tls_key=paths.tls_key(app), tls_protocols=TLS_PROTOCOLS, tls_ciphers=TLS_CIPHERS, http2_on=http2_on)


@deploy("Nginx sites")
def sites(apps: list[App], removed: list[App], all_apps: list[App], state: State,
          certificates: dict[str, list[OperationMeta]], guards: dict[str, Guard]) -> OperationMeta:
    """Nginx's own configuration, the sites of `apps` (the others' stay as they are), none for
    `removed` apps, the default server, and one `nginx -t`-checked reload when any of it or of the
    `certificates` changed. Each app's new site is checked with the rest before it is enabled: one
    that Nginx refuses fails its app only and leaves the site it had. Returns the reload."""
    http2_on = http2_directive(state)
    https = any(app.tls and not app.balancer for app in all_apps if app.present)
    default_site = render("nginx/default.conf.j2", https=https,
                          tls_protocols=TLS_PROTOCOLS, tls_ciphers=TLS_CIPHERS, http2_on=http2_on)
    conf, check, default = ops.written("Nginx configuration, site check, default site", [
        ops.File(paths.NGINX_CONF, render("nginx/nginx.conf.j2", worker_connections=WORKER_CONNECTIONS,
                                          tls_protocols=TLS_PROTOCOLS)),
        ops.File(paths.NGINX_CHECK, render("nginx/djangohost-nginx-check.j2", enabled=paths.NGINX_ENABLED,
                                           nginx_conf=paths.NGINX_CONF), mode="755"),
        ops.File(paths.NGINX_DEFAULT_SITE, default_site),
    ], state.paths)
    changes = [conf, default, ops.link(name="default: nginx site enabled", path=paths.NGINX_DEFAULT_LINK,
                                       target=paths.NGINX_DEFAULT_SITE,
                                       current=state.paths.get(paths.NGINX_DEFAULT_LINK))]
    # Each app's Nginx logs: its workers reopen them after a rotation, as www-data; the app's
    # group reads them, no other app can.
    ops.directories(name="Nginx sites to check, logs of the apps", directories=[
        (paths.NGINX_STAGED, "root", "root", "700"), (paths.NGINX_LOGS, "root", "root", "755"),
        *((paths.nginx_logs(app), "www-data", app.name, "750") for app in apps),
    ], current=state.paths)

    debian_default = state.paths.get(paths.NGINX_DEBIAN_DEFAULT)
    if "nginx" not in state.packages:
        # Installed by this run, whose package enables the default site after the fact was read.
        debian_default = PathState("link")
    changes.append(ops.absent(
        name="Debian's default site disabled",
        path=paths.NGINX_DEBIAN_DEFAULT,
        current=debian_default,
    ))

    app_sites = {app.name: site_conf(app, http2_on) for app in apps}
    if any(app.part(NginxPart).basic_auth for app in apps):
        ops.directory(name="Nginx: the apps' logins", path=LOGINS, owner="root", group="www-data", mode="750",
                      current=state.paths.get(LOGINS))
    for app in host.loop(apps):
        write_logins(app, state)
        changes.append(app_site(app, app_sites[app.name], state,
                                [conf, check, *certificates.get(app.name, [])], guards[app.name]))
    for app in host.loop(removed):
        for path in (paths.nginx_enabled(app), paths.nginx_site(app), paths.nginx_staged(app), logins(app),
                     maintenance_flag(app)):
            changes.append(ops.absent(name=f"{app.name}: nginx {path.split('/')[-2]} entry removed", path=path,
                                      current=state.paths.get(path)))

    # What the enabled configuration is after this run: the sites written now, and the sites of
    # apps this run leaves alone as they are on the host.
    enabled = [default_site, *(f"{name}\0{sha256(content)}" for name, content in app_sites.items())]
    for app in all_apps:
        site = state.paths.get(paths.nginx_site(app))
        if app.name not in app_sites and app not in removed and site is not None:
            enabled.append(f"{app.name}\0{site.sha256}")
    applied = Stamp.of(state, paths.stamp("nginx"), *sorted(enabled))
    return react("Nginx reload", RELOAD, [applied], [*changes, *(op for ops_ in certificates.values() for op in ops_)])


def write_logins(app: App, state: State) -> None:
    """The app's basic authentication users (user:hash lines), read by Nginx at each request: a
    change needs no reload. Shown in no diff: a hash is a password's to guess offline."""
    auth = app.part(NginxPart).basic_auth
    if auth is None:
        ops.absent(name=f"{app.name}: no nginx logins", path=logins(app), current=state.paths.get(logins(app)))
        return
    ops.file(name=f"{app.name}: nginx logins", path=logins(app),
             content="".join(f"{user}:{hashed}\n" for user, hashed in sorted(auth.users.items())),
             owner="root", group="www-data", mode="640", current=state.paths.get(logins(app)), secret=True)


def app_site(app: App, content: str, state: State, checked_with: list[OperationMeta], guard: Guard) -> OperationMeta:
    """The app's site, written where Nginx does not read it, checked with the whole configuration
    (djangohost-nginx-check) and its provided certificate files, and only then copied to
    sites-available and enabled, the certificate files put in place."""
    staged = ops.file(name=f"{app.name}: nginx site", path=paths.nginx_staged(app), content=content,
                      owner="root", group="root", mode="644", current=state.paths.get(paths.nginx_staged(app)))
    site, link = paths.nginx_site(app), paths.nginx_enabled(app)
    enabled = state.paths.get(link)
    provided = app.tls is not None and app.tls.mode == "provided"
    steps = [
        f"{paths.NGINX_CHECK} {app.name} {paths.nginx_staged(app)}{f' {paths.tls_dir(app)}' if provided else ''}",
        *(_replace(f"{paths.tls_staged(app)}/{name}", live) for name, live in
          (("fullchain.pem", paths.tls_cert(app)), ("privkey.pem", paths.tls_key(app))) if provided),
        _replace(paths.nginx_staged(app), site),
        *([] if enabled and enabled.target == site else [relink(link, site)]),
    ]
    return react(
        f"{app.name}: nginx site checked and enabled",
        " && ".join(steps),
        [Stamp.of(state, paths.stamp("site", app), content, *(
            [sha256(app.tls.cert.read_text()), sha256(app.tls.key.read_text())]
            if provided and app.tls and app.tls.cert and app.tls.key else []))],
        [staged, *checked_with],
        guard,
        risky=True,
    )


def _replace(source: str, target: str) -> str:
    """Shell: a copy of `source` (owner and mode kept) takes the place of `target` at once."""
    return f"cp -p {source} {target}.new && mv -f {target}.new {target}"
