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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deploys.inventory import App, DatabaseServer, InventoryError, load_inventory
from deploys.schema import DOMAIN_RE

ROLES = ("lb", "app", "db")
SINGLE_SERVER = frozenset({"app", "db"})


@dataclass(frozen=True)
class ServedDatabase:
    """An app's database on the database server, and the app servers allowed to reach it."""

    app: App
    clients: tuple[str, ...]  # the private addresses of the app's servers


@dataclass(frozen=True)
class Topology:
    """The inventory's hosts by role, and what each must do."""

    roles: dict[str, frozenset[str]]  # host name -> its roles
    apps: dict[str, list[App]]  # host name -> the apps it runs (none without the app role)
    served: dict[str, list[ServedDatabase]]  # database server -> the databases it keeps for app servers


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
    if not isinstance(address, str) or not _is_address(address):
        raise InventoryError(f"host {host.name}, field private_address: {address!r} is not an IP address or a "
                             "host name; set private_address to the address the other hosts reach it at")
    return address


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return DOMAIN_RE.fullmatch(value) is not None and not value.startswith("*")


def load_topology(hosts: Iterable[Any]) -> Topology:
    """Every host's apps (load_inventory), roles and address; which database server keeps the
    databases of app servers without the db role. Raises InventoryError naming each problem."""
    hosts = list(hosts)
    declared = load_inventory(hosts)
    host_roles = {host.name: roles(host) for host in hosts}
    servers = [host for host in hosts if "db" in host_roles[host.name]]
    apps: dict[str, list[App]] = {}
    served: dict[str, list[ServedDatabase]] = {}
    clients: dict[str, list[str]] = {}
    problems = []
    for host in hosts:
        if "app" not in host_roles[host.name]:
            apps[host.name] = []
            continue
        if "db" in host_roles[host.name]:
            apps[host.name] = declared[host.name]
            continue
        apps[host.name] = []
        for app in declared[host.name]:
            problem = _remote_problem(app, [server.name for server in servers])
            if problem:
                problems.append(f"host {host.name}, app {app.name}, field {problem}")
                continue
            if app.database and app.present:
                server = servers[0]
                app = dataclasses.replace(app, database_server=DatabaseServer(server.name, private_address(server)))
                if app.name not in clients:
                    served.setdefault(server.name, []).append(ServedDatabase(app, ()))
                clients.setdefault(app.name, []).append(private_address(host))
            apps[host.name].append(app)
    for name, addresses in clients.items():
        if len(addresses) > 1:
            hosts_of = [host for host, host_apps in apps.items() if any(app.name == name for app in host_apps)]
            problems.append(f"host {hosts_of[1]}, app {name}, field name: {name} is on several app servers "
                            f"({', '.join(hosts_of)}), and one app on several servers behind a load balancer is "
                            "not supported yet; keep each app on one app server")
    if problems:
        raise InventoryError("\n".join(problems))
    served = {server: [dataclasses.replace(entry, clients=tuple(clients[entry.app.name])) for entry in entries]
              for server, entries in served.items()}
    return Topology(roles=host_roles, apps=apps, served=served)


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
    if app.database != "postgresql":
        return (f"database: {app.database} runs on the app's own host only; use postgresql, or give this "
                "host the db role")
    if app.backup and app.backup.cron:
        return (f"backup: backups of a database on the database server ({servers[0]}) are not taken yet; "
                "set backup: false and back up the database server itself")
    return None
