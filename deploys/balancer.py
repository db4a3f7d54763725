"""The load balancer: Nginx in front of the app servers, one upstream per app.

It passes the visitor's address on (X-Forwarded-For, X-Real-IP); the app servers' sites answer
it alone (deploys.topology gives each app its address). Static files are proxied like the rest
and cached by no one here: each app server serves its own release's files with their
Cache-Control, so what a browser or a CDN caches is never a file of another release.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt

from deploys import base, nginx, ops, paths
from deploys.templates import render
from deploys.topology import Balanced
from facts.state import HostState, PathState, State

# How long a server that failed an attempt is skipped, and how long a connection to it may take.
FAIL_TIMEOUT = "10s"
CONNECT_TIMEOUT = "2s"
SITE = f"{paths.NGINX_AVAILABLE}/djangohost-balancer"
SITE_LINK = f"{paths.NGINX_ENABLED}/djangohost-balancer"


def read_balancer_state() -> State:
    return host.get_fact(HostState, packages=["nginx"], paths=[
        paths.UPLOADS, paths.NGINX_CONF, paths.NGINX_DEBIAN_DEFAULT, paths.NGINX_DEFAULT_SITE,
        paths.NGINX_DEFAULT_LINK, SITE, SITE_LINK, paths.LB_MEMBER])


@deploy("Load balancer")
def balancer(apps: list[Balanced]) -> None:
    """Nginx with an upstream and a site for each of `apps`, and a default server that refuses
    other names; reloaded (checked first) when any of it changed."""
    state = read_balancer_state()
    if "nginx" not in state.packages:
        apt.packages(name="Install Nginx", packages=["nginx"], update=True, no_recommends=True)
    base.start("nginx", state)
    base.uploads(state)
    changes = [
        ops.file(name="Nginx configuration", path=paths.NGINX_CONF,
                 content=render("nginx/nginx.conf.j2", worker_connections=nginx.WORKER_CONNECTIONS,
                                tls_protocols=nginx.TLS_PROTOCOLS),
                 owner="root", group="root", mode="644", current=state.paths.get(paths.NGINX_CONF)),
        *nginx.site_files("default", paths.NGINX_DEFAULT_SITE, paths.NGINX_DEFAULT_LINK,
                          render("nginx/default.conf.j2", https=False), state),
        *nginx.site_files("Balanced apps", SITE, SITE_LINK,
                          render("nginx/balancer.conf.j2", apps=apps, fail_timeout=FAIL_TIMEOUT,
                                 connect_timeout=CONNECT_TIMEOUT), state),
        ops.absent(name="Debian's default site disabled", path=paths.NGINX_DEBIAN_DEFAULT,
                   # Installed by this run, whose package enables the default site after the fact was read.
                   current=state.paths.get(paths.NGINX_DEBIAN_DEFAULT) or (
                       PathState("link") if "nginx" not in state.packages else None)),
    ]
    ops.file(name="Upstream member tool", path=paths.LB_MEMBER,
             content=render("nginx/djangohost-lb-member.j2", site=SITE, reload=nginx.RELOAD),
             owner="root", group="root", mode="755", current=state.paths.get(paths.LB_MEMBER))
    ops.command(name="Nginx reload", command=nginx.RELOAD, needed=any(op.will_change for op in changes),
                reason="nothing changed", _if=lambda: any(op.did_change() for op in changes))
