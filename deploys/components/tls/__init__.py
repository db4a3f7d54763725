"""HTTPS for an app: its certificate and key where its Nginx site reads them, however they are had.

Provided files are uploaded; a self-signed certificate is made on the host once; an ACME
certificate is asked for by certbot through the running Nginx (webroot), after a self-signed
placeholder has let Nginx start serving the app's HTTPS site. Keys are root's only (0600).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from deploys.components import Component, Packages
from deploys.components.nginx import RELOAD
from deploys.engine import ops
from deploys.engine.ops import Guard, Stamp, react, relink
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App
from facts.state import State


def packages(apps: list[App]) -> list[str]:
    """Debian packages the apps' TLS modes need."""
    modes = {app.tls.mode for app in apps if app.tls}
    return [*(["openssl"] if modes - {"provided"} else []), *(["certbot"] if "acme" in modes else [])]


def self_signed(app: App) -> str:
    """Shell: a self-signed certificate for the app's domains, replacing cert and key together."""
    cert, key = shlex.quote(paths.tls_cert(app)), shlex.quote(paths.tls_key(app))
    subject = shlex.quote(f"/CN={app.domains[0]}")
    names = shlex.quote("subjectAltName=" + ",".join(f"DNS:{domain}" for domain in app.domains))
    return (
        f"(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 "
        f"-days 825 -nodes -subj {subject} -addext {names} "
        f"-keyout {key}.new -out {cert}.new 2>&1) && chmod 644 {cert}.new && "
        f"mv -f {key}.new {key} && mv -f {cert}.new {cert}"
    )


def acme_app(app: App) -> bool:
    """Whether the app's certificate is had from an ACME server."""
    return app.tls is not None and app.tls.mode == "acme"


def ends_here(apps: list[App]) -> list[App]:
    """The apps whose TLS ends on their own host: behind a load balancer, it ends there
    (deploys.components.balancer)."""
    return [app for app in apps if app.tls and not app.balancer]


@deploy("TLS certificate")
def certificate(app: App, state: State, guard: Guard) -> list[OperationMeta]:
    """The app's certificate and key in place for Nginx (for ACME, a placeholder until it is
    issued; provided files wait in next/ until Nginx accepted them with the app's site, see
    deploys.components.nginx). Returns the operations that change what Nginx serves."""
    assert app.tls is not None
    cert = paths.tls_cert(app)
    for directory in host.loop([paths.tls_dir(app), paths.tls_staged(app)] if app.tls.mode == "provided"
                               else [paths.tls_dir(app)]):
        ops.directory(name=f"{app.name}: directory {directory}", path=directory, owner="root", group="root",
                      mode="700", current=state.paths.get(directory))
    if app.tls.mode == "provided":
        assert app.tls.cert and app.tls.key
        # Made here, not by a stamped mode: a later self-signed or ACME mode makes its own again.
        ops.absent(name=f"{app.name}: no certificate made on the host", path=paths.stamp("tls", app),
                   current=state.paths.get(paths.stamp("tls", app)))
        staged = paths.tls_staged(app)
        return [
            ops.file(name=f"{app.name}: TLS certificate", path=f"{staged}/fullchain.pem",
                     content=app.tls.cert.read_text(), owner="root", group="root", mode="644",
                     current=state.paths.get(f"{staged}/fullchain.pem")),
            ops.file(name=f"{app.name}: TLS key", path=f"{staged}/privkey.pem", content=app.tls.key.read_text(),
                     owner="root", group="root", mode="600", current=state.paths.get(f"{staged}/privkey.pem"),
                     secret=True),
        ]
    if app.tls.mode == "self-signed":
        # Made again only when the domains change.
        stamp = Stamp.of(state, paths.stamp("tls", app), "self-signed", *app.domains)
        return [react(f"{app.name}: self-signed certificate", self_signed(app), [stamp], [], guard, risky=True)]
    return [guard.watch(ops.command(
        name=f"{app.name}: placeholder certificate until ACME issues one",
        command=self_signed(app),
        needed=cert not in state.paths,
        reason=f"{cert} exists",
        _ignore_errors=True,
    ))]


@deploy("ACME client")
def acme_client(apps: list[App], state: State) -> None:
    """For apps with ACME certificates: the webroot certbot answers challenges from, and the hook
    that reloads Nginx whenever certbot's timer renews a certificate."""
    if not any(acme_app(app) for app in apps):
        return
    ops.directory(name="ACME challenge webroot", path=paths.ACME_WEBROOT, owner="root", group="root",
                  mode="755", current=state.paths.get(paths.ACME_WEBROOT))
    ops.directory(name="certbot deploy hooks", path=paths.CERTBOT_DEPLOY_HOOKS, owner="root", group="root",
                  mode="755", current=state.paths.get(paths.CERTBOT_DEPLOY_HOOKS))
    ops.file(name="certbot deploy hook: reload Nginx", path=paths.CERTBOT_DEPLOY_HOOK,
             content=render("tls/djangohost-nginx-reload.j2"), owner="root", group="root", mode="755",
             current=state.paths.get(paths.CERTBOT_DEPLOY_HOOK))


@deploy("ACME certificate")
def acme(app: App, state: State, guard: Guard) -> OperationMeta:
    """Once Nginx serves the app's challenge path: certbot's certificate for all the app's
    domains, linked where Nginx reads it, and a checked Nginx reload. Asked for again only when
    the domains, email or directory change; renewals are certbot's timer's."""
    assert app.tls is not None
    live = f"{paths.CERTBOT_LIVE}/{app.name}"
    links = " && ".join(
        relink(path, f"{live}/{name}")
        for name, path in (("fullchain.pem", paths.tls_cert(app)), ("privkey.pem", paths.tls_key(app)))
    )
    domains = " ".join(f"-d {domain}" for domain in app.domains)
    certbot = (
        f"certbot certonly --non-interactive --quiet --agree-tos --email {shlex.quote(app.tls.email)} "
        f"--server {shlex.quote(app.tls.directory)} --webroot --webroot-path {paths.ACME_WEBROOT} "
        f"--cert-name {app.name} --keep-until-expiring --expand {domains}"
    )
    stamp = Stamp.of(state, paths.stamp("tls", app), "acme", app.tls.directory, app.tls.email, *app.domains)
    return react(f"{app.name}: ACME certificate", f"{certbot} && {links} && {{\n{RELOAD}\n}}", [stamp], [],
                 guard, risky=True)


def _watched(app: App) -> Sequence[str]:
    staged = paths.tls_staged(app)
    return [paths.tls_dir(app), paths.stamp("tls", app),
            *([paths.tls_cert(app), paths.tls_key(app), staged, f"{staged}/fullchain.pem", f"{staged}/privkey.pem"]
              if app.tls else [])]


# Behind a load balancer, TLS ends there (deploys.components.balancer): its app servers need none.
COMPONENT = Component(
    "tls", watched=_watched,
    packages=lambda apps, settings: Packages(others=tuple(packages([app for app in apps if not app.balancer]))),
    host_paths=(paths.TLS_DIR, paths.ACME_WEBROOT, paths.CERTBOT_DEPLOY_HOOKS, paths.CERTBOT_DEPLOY_HOOK))
