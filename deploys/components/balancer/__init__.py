"""The load balancer: Nginx in front of the app servers, one upstream per app.

TLS and HSTS end here, with certificates had as on a single server (deploys.components.tls). It passes the
visitor's address and scheme on (X-Forwarded-For, X-Real-IP, X-Forwarded-Proto); the app servers'
sites answer it alone (deploys.model.topology gives each app its address). Static files are proxied like the rest
and cached by no one here: each app server serves its own release's files with their
Cache-Control, so what a browser or a CDN caches is never a file of another release.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import apt

import facts
from deploys.components import base, nginx, tls
from deploys.components.nginx.contract import NginxPart
from deploys.engine import ops, steps
from deploys.engine.ops import Guard
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App
from deploys.model.topology import Balanced
from facts.state import HostState, PathState, State

# How long a server that failed an attempt is skipped, and how long a connection to it may take.
FAIL_TIMEOUT = "10s"
CONNECT_TIMEOUT = "2s"
SITE = f"{paths.NGINX_AVAILABLE}/djangohost-balancer"
SITE_LINK = f"{paths.NGINX_ENABLED}/djangohost-balancer"


def read_balancer_state(apps: list[App]) -> State:
    tls_apps = [app for app in apps if app.tls]
    return facts.read(host, HostState, packages=["nginx", *tls.packages(tls_apps)],
                         services=[(nginx.SERVICE.name, nginx.SERVICE.running)], paths=[
        paths.UPLOADS, paths.STAMPS, paths.NGINX_CONF, paths.NGINX_DEBIAN_DEFAULT, paths.NGINX_DEFAULT_SITE,
        paths.NGINX_DEFAULT_LINK, SITE, SITE_LINK, paths.LB_MEMBER, paths.TLS_DIR, paths.ACME_WEBROOT,
        paths.CERTBOT_DEPLOY_HOOKS, paths.CERTBOT_DEPLOY_HOOK,
        *(path for app in tls_apps
          for path in (paths.tls_dir(app), paths.tls_cert(app), paths.tls_key(app), paths.stamp("tls", app)))])


@deploy("Load balancer")
def balancer(apps: list[Balanced]) -> None:
    """Nginx with an upstream and a site for each of `apps`, TLS and HSTS for those that have it
    (certificates as on a single server, deploys.components.tls), and a default server that refuses other
    names; reloaded (checked first) when any of it changed."""
    tls_apps = [entry.app for entry in apps if entry.app.tls]
    acme_apps = [app for app in tls_apps if app.tls and app.tls.mode == "acme"]
    state = read_balancer_state([entry.app for entry in apps])
    missing = [package for package in ["nginx", *tls.packages(tls_apps)] if package not in state.packages]
    if missing:
        apt.packages(name="Install packages", packages=missing, update=True, no_recommends=True)
    base.start(["nginx"], state)
    base.uploads(state)
    ops.directory(name="Stamps of applied reloads", path=paths.STAMPS, owner="root", group="root", mode="700",
                  current=state.paths.get(paths.STAMPS))
    guards = {app.name: Guard(app.name) for app in tls_apps}
    certificates = [op for app in host.loop(tls_apps)
                    for op in tls.certificate(app=app, state=state, guard=guards[app.name])]  # type: ignore[attr-defined]
    tls.acme_client(apps=tls_apps, state=state)
    changes = [*certificates, *sites(apps, state)]
    ops.file(name="Upstream member tool", path=paths.LB_MEMBER,
             content=render("balancer/djangohost-lb-member.j2", site=SITE, reload=nginx.RELOAD),
             owner="root", group="root", mode="755", current=state.paths.get(paths.LB_MEMBER))
    ops.command(name="Nginx reload", command=nginx.RELOAD, needed=any(op.will_change for op in changes),
                reason="nothing changed", _if=lambda: any(op.did_change() for op in changes))
    for app in host.loop(acme_apps):
        tls.acme(app=app, state=state, guard=guards[app.name])
    steps.failures(guards=list(guards.values()))


def sites(apps: list[Balanced], state: State) -> list[OperationMeta]:
    """Nginx's configuration, the default server and the balanced apps' sites."""
    tls_settings = {"tls_protocols": nginx.TLS_PROTOCOLS, "tls_ciphers": nginx.TLS_CIPHERS,
                    "http2_on": nginx.http2_directive(state)}
    certificates = {entry.app.name: (paths.tls_cert(entry.app), paths.tls_key(entry.app))
                    for entry in apps if entry.app.tls}
    written = ops.written("Nginx configuration, default site, balanced apps' site", [
        ops.File(paths.NGINX_CONF, render("nginx/nginx.conf.j2", worker_connections=nginx.WORKER_CONNECTIONS,
                                          tls_protocols=nginx.TLS_PROTOCOLS)),
        ops.File(paths.NGINX_DEFAULT_SITE, render("nginx/default.conf.j2", https=bool(certificates), **tls_settings)),
        ops.File(SITE, render("balancer/balancer.conf.j2", apps=apps, NginxPart=NginxPart, fail_timeout=FAIL_TIMEOUT,
                              connect_timeout=CONNECT_TIMEOUT, certificates=certificates,
                              acme_webroot=paths.ACME_WEBROOT, **tls_settings)),
    ], state.paths)
    return [
        *written,
        ops.link(name="default: nginx site enabled", path=paths.NGINX_DEFAULT_LINK, target=paths.NGINX_DEFAULT_SITE,
                 current=state.paths.get(paths.NGINX_DEFAULT_LINK)),
        ops.link(name="Balanced apps: nginx site enabled", path=SITE_LINK, target=SITE,
                 current=state.paths.get(SITE_LINK)),
        ops.absent(name="Debian's default site disabled", path=paths.NGINX_DEBIAN_DEFAULT,
                   # Installed by this run, whose package enables the default site after the fact was read.
                   current=state.paths.get(paths.NGINX_DEBIAN_DEFAULT) or (
                       PathState("link") if "nginx" not in state.packages else None)),
    ]
