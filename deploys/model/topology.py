"""Which host does what: roles, the addresses hosts reach each other at, and where each app's
database lives.

A host's roles come from the inventory groups `lb`, `app` and `db`, or from its host data `roles`.
A host with neither is a single server: it runs its apps and their databases, as before roles
existed. An app server without the db role keeps its apps' PostgreSQL databases on the
inventory's database server, reached over TLS at that server's `private_address` (host data;
default: the name pyinfra connects to).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deploys.model.inventory import App, DatabaseServer, InventoryError, load_inventory
from deploys.model.schema import DOMAIN_RE, AppEntry

ROLES = ("lb", "app", "db")
SINGLE_SERVER = frozenset({"app", "db"})


@dataclass(frozen=True)
class ServedDatabase:
    """An app's database on the database server, and the app servers allowed to reach it."""

    app: App
    clients: tuple[str, ...]  # the private addresses of the app's servers


@dataclass(frozen=True)
class Balanced:
    """An app on the load balancer, and the app servers it spreads the app's requests over."""

    app: App
    servers: tuple[str, ...]  # their private addresses


@dataclass(frozen=True)
class Topology:
    """The inventory's hosts by role, and what each must do."""

    roles: dict[str, frozenset[str]]  # host name -> its roles
    apps: dict[str, list[App]]  # host name -> the apps it runs (none without the app role)
    served: dict[str, list[ServedDatabase]]  # database server -> the databases it keeps for app servers
    balanced: dict[str, list[Balanced]]  # load balancer -> the apps it balances
    hosts: dict[str, Any]  # host name -> the inventory's host

    def address(self, name: str) -> str:
        """The private address of the host `name`."""
        return private_address(self.hosts[name])


def roles(host: Any) -> frozenset[str]:
    """A host's roles: its groups among ROLES and its host data `roles`; a single server's without either."""
    given = host.data.get("roles")
    if given is not None and (not isinstance(given, list) or not set(given) <= set(ROLES)):
        raise InventoryError(f"host {host.name}, field roles: {given!r} must be a list of {', '.join(ROLES)}")
    found = {group for group in host.groups if group in ROLES} | set(given or ())
    return frozenset(found) or SINGLE_SERVER


def private_address(host: Any) -> str:
    """The address other hosts reach `host` at: an IP address or a host name."""
    address = host.data.get("private_address") or host.name
    if not isinstance(address, str) or not is_address(address):
        raise InventoryError(f"host {host.name}, field private_address: {address!r} is not an IPv4 or IPv6 address "
                             "(without a zone id) or a host name; set private_address to the address the other hosts "
                             "reach it at")
    return address


# What an IP address may be written with: Python's ipaddress also takes an IPv6 zone id (after %),
# which may hold anything but % and / (spaces, line breaks, ;, $(...)). The address goes into root's
# commands, pg_hba.conf, Nginx's files and a certificate: one strict form, checked before any host
# is touched. A link-local address with a zone id names an interface of one host only: refused.
ADDRESS_CHARS_RE = re.compile(r"[0-9A-Fa-f.:]{2,45}")


def is_address(value: str) -> bool:
    """Whether `value` is an IPv4 address, an IPv6 address without a zone id, or a host name."""
    if ADDRESS_CHARS_RE.fullmatch(value):
        try:
            ipaddress.ip_address(value)
            return True
        except ValueError:
            pass
    return DOMAIN_RE.fullmatch(value) is not None and not value.startswith("*")


# The run's inventory and its topology (see topology_of).
_LOADED: list[tuple[Any, Topology]] = []


def topology_of(inventory: Any, contract: type[AppEntry]) -> Topology:
    """load_topology(inventory, contract), once a run: pyinfra runs a deploy file once for each
    host, and each would check every host's apps again."""
    if not _LOADED or _LOADED[0][0] is not inventory:
        _LOADED[:] = [(inventory, load_topology(inventory, contract))]
    return _LOADED[0][1]


def load_topology(hosts: Iterable[Any], contract: type[AppEntry]) -> Topology:
    """Every host's apps (entries of `contract`, load_inventory) placed by roles: where each database is kept, which app
    server is each app's primary, what the load balancer balances. Raises InventoryError naming
    each problem."""
    hosts = list(hosts)
    declared = load_inventory(hosts, contract)
    # Every address given, whether or not this inventory's roles use it: a bad one stops the run.
    for host in hosts:
        if host.data.get("private_address") is not None:
            private_address(host)
    host_roles = {host.name: roles(host) for host in hosts}
    by_role = {role: [host for host in hosts if role in host_roles[host.name]] for role in ROLES}
    runs = {host.name: [app for app in declared[host.name] if app.servers is None or host.name in app.servers]
            if "app" in host_roles[host.name] else [] for host in hosts}
    servers_of: dict[str, list[str]] = {}
    for host in hosts:
        for app in runs[host.name]:
            servers_of.setdefault(app.name, []).append(host.name)
    problems = _role_problems(host_roles, by_role)
    problems += _server_problems(declared, [host.name for host in by_role["app"]])
    for host in hosts:
        for app in runs[host.name]:
            problems += [f"host {host.name}, app {app.name}, field {problem}"
                         for problem in _app_problems(app, host.name, host_roles[host.name], servers_of, by_role)]
    problems += _domain_problems(runs) if by_role["lb"] else []
    if problems:
        raise InventoryError("\n".join(problems))
    apps = {host.name: [_placed(app, host.name, host_roles[host.name], servers_of, by_role)
                        for app in runs[host.name]] for host in hosts}
    served, balanced = _shared(apps, servers_of, {host.name: host for host in hosts}, by_role)
    return Topology(roles=host_roles, apps=apps, served=served, balanced=balanced,
                    hosts={host.name: host for host in hosts})


def _shared(apps: dict[str, list[App]], servers_of: dict[str, list[str]], hosts: dict[str, Any],
            by_role: dict[str, list[Any]]) -> tuple[dict[str, list[ServedDatabase]], dict[str, list[Balanced]]]:
    """What the database server keeps and the load balancer balances, for the app servers."""
    served: dict[str, list[ServedDatabase]] = {}
    balanced: dict[str, list[Balanced]] = {}
    for name, servers in servers_of.items():
        app = next(app for app in apps[servers[0]] if app.name == name)
        if not app.present or not (app.database_server or by_role["lb"]):
            continue  # a single server's: no other host reaches it
        clients = tuple(private_address(hosts[server]) for server in servers)
        if app.database_server:
            served.setdefault(app.database_server.host, []).append(ServedDatabase(app, clients))
        if by_role["lb"]:
            balanced.setdefault(by_role["lb"][0].name, []).append(Balanced(app, clients))
    return served, balanced


def _placed(app: App, host: str, host_roles: frozenset[str], servers_of: dict[str, list[str]],
            by_role: dict[str, list[Any]]) -> App:
    """The app as `host` runs it: its database server, its load balancer, and on any but its
    primary server, no unique process (nor schedule: deploys.components.schedule)."""
    changes: dict[str, Any] = {}
    if app.database and app.present and "db" not in host_roles:
        server = by_role["db"][0]
        changes["database_server"] = DatabaseServer(server.name, private_address(server))
    if by_role["lb"]:
        changes["balancer"] = private_address(by_role["lb"][0])
    if (app.primary_server or servers_of[app.name][0]) != host:
        changes.update(primary=False, processes=tuple(process for process in app.processes if not process.unique))
    return dataclasses.replace(app, **changes)


def _server_problems(declared: dict[str, list[App]], app_servers: list[str]) -> list[str]:
    """Names in the apps' `servers` that are no app server of the inventory."""
    return [f"host {host}, app {app.name}, field servers: {name} is not an app server of the inventory "
            f"(app servers: {', '.join(app_servers)})"
            for host, apps in declared.items() for app in apps for name in app.servers or () if name not in app_servers]


def _role_problems(host_roles: dict[str, frozenset[str]], by_role: dict[str, list[Any]]) -> list[str]:
    problems = [f"host {name}, field roles: a host cannot be both the load balancer and an app server (both "
                "answer on port 80)" for name, given in host_roles.items() if {"lb", "app"} <= given]
    if len(by_role["lb"]) > 1:
        problems.append(f"host {by_role['lb'][1].name}, field roles: several hosts have the lb role "
                        f"({', '.join(host.name for host in by_role['lb'])}); one load balancer is supported")
    return problems


def _domain_problems(runs: dict[str, list[App]]) -> list[str]:
    """Domains two different apps take on the load balancer, which answers for every app server."""
    owners: dict[str, tuple[str, str]] = {}
    problems = []
    for host, apps in runs.items():
        for app in apps:
            for domain in app.domains:
                owner = owners.setdefault(domain, (app.name, host))
                if owner[0] != app.name:
                    problems.append(f"host {host}, app {app.name}, field domains: {domain} is already used by app "
                                    f"{owner[0]} on host {owner[1]}, and the load balancer answers for both")
    return problems


def _app_problems(app: App, host: str, host_roles: frozenset[str], servers_of: dict[str, list[str]],
                  by_role: dict[str, list[Any]]) -> list[str]:
    """Why `app` cannot run on `host` as the inventory places it: "FIELD: why" each."""
    servers = servers_of[app.name]
    problems = [] if "db" in host_roles else [
        problem for problem in [_remote_problem(app, [server.name for server in by_role["db"]])] if problem]
    if app.primary_server and app.primary_server not in servers:
        problems.append(f"primary: {app.primary_server} is not one of its app servers ({', '.join(servers)})")
    if by_role["lb"] and app.tls and app.tls.mode == "provided":
        problems.append("tls: provided certificates on the load balancer are not done yet; use self-signed or "
                        "acme, which the load balancer makes or asks for")
    if len(servers) < 2 or not app.present:
        return problems
    if not by_role["lb"]:
        problems.append(f"name: {app.name} is on several app servers ({', '.join(servers)}), which need a load "
                        "balancer in front (a host in the group lb); or keep the app on one app server")
    if app.database and "db" in host_roles:
        problems.append(f"database: on several app servers, its database must be on the database server; remove "
                        f"the db role from {host}")
    for field, why in app.on_several_servers():
        problems.append(f"{field}: {why}")
    if app.media:
        problems.append("media: on several app servers, an upload saved on one is missing on the others; keep "
                        "uploads in an object store (django-storages, for example) and set media: false, or keep "
                        "the app on one app server")
    return problems


def _remote_problem(app: App, servers: list[str]) -> str | None:
    """Why `app`, on an app server without the db role, cannot have its database elsewhere: "FIELD: why"."""
    if not app.database or not app.present:
        return None
    if not servers:
        return ("database: this host has no db role and no host of the inventory has it (the group db, or "
                "host data roles); give one host the db role, or this host too")
    if len(servers) > 1:
        return (f"database: several hosts have the db role ({', '.join(servers)}); one database server is "
                "supported for app servers without the db role")
    if not app.engine.on_database_server:
        others = [name for name, engine in app.engines.items() if engine.on_database_server]
        return (f"database: {app.database} runs on the app's own host only; use {' or '.join(others)}, or give "
                "this host the db role")
    if app.backup and app.backup.cron:
        return (f"backup: backups of a database on the database server ({servers[0]}) are not taken yet; "
                "set backup: false and back up the database server itself")
    return None
