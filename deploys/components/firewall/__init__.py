"""The host's firewall, by its roles (nftables, Debian's package): on a database server, PostgreSQL's
port answers the app servers of the apps it keeps databases for, and no other host (pg_hba refuses
the others too, but only once PostgreSQL has answered them). The other roles get none: a single
server's PostgreSQL listens on loopback only, the load balancer serves everyone, and an app
server's sites answer the load balancer alone (their `allow`); nothing else listens beyond
loopback on any of them.

One table of djangohost's own (`inet djangohost`, in FIREWALL), replaced whole when it changes and
applied at boot by a unit of its own (with systemd); the host's other rules are left alone.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt

import facts
from deploys.components import Component
from deploys.components.postgres.contract import PORT
from deploys.engine import ops
from deploys.engine.ops import Stamp, react
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.topology import Topology
from facts.state import HostState, State

PACKAGE = "nftables"
NFT = "/usr/sbin/nft"


@dataclass(frozen=True)
class Port:
    """A port of the host that answers some hosts only."""

    number: int
    why: str
    allowed: tuple[str, ...]  # addresses, or host names nft resolves as it loads the table

    @property
    def sources(self) -> dict[str, list[str]]:
        """The allowed addresses by nft's family: ip (IPv4, and host names), ip6."""
        families: dict[str, list[str]] = {}
        for source in self.allowed:
            try:
                family = "ip6" if ipaddress.ip_address(source).version == 6 else "ip"
            except ValueError:
                family = "ip"
            families.setdefault(family, []).append(source)
        return families


def ports(topology: Topology, name: str) -> list[Port]:
    """What the roles of the host `name` open to some hosts only."""
    served = topology.served.get(name, [])
    if not served:
        return []
    clients = tuple(sorted({client for database in served for client in database.clients}))
    return [Port(PORT, "PostgreSQL: the app servers of the apps it keeps databases for", clients)]


def read_state() -> State:
    """The firewall's part of the host's state (a database server's own deploy reads no other here)."""
    state: State = facts.read(host, HostState, packages=[PACKAGE], paths=[
        paths.ETC, paths.STAMPS, paths.FIREWALL, paths.FIREWALL_UNIT, paths.stamp("firewall")])
    return state


def removed(systemd: bool) -> str:
    """Shell: djangohost's table gone from the kernel, with its file, its stamp and its unit."""
    unit = (f" && {{ systemctl disable djangohost-firewall 2>/dev/null; rm -f {paths.FIREWALL_UNIT} && "
            "systemctl daemon-reload; }" if systemd else "")
    return (f"{{ ! command -v nft >/dev/null || nft delete table inet djangohost 2>/dev/null || true; }} && "
            f"rm -f {paths.FIREWALL} {paths.stamp('firewall')}{unit}")


@deploy("Firewall")
def firewall(ports: list[Port], state: State) -> None:
    """The host's table, written and applied when it changed (or was not applied); at boot too
    with systemd. A host whose roles need none has its table removed, if it had one (as `state`,
    the host's state, says)."""
    if not ports:
        if paths.FIREWALL in state.paths:  # the host had a role that needed one
            ops.command(name="Firewall removed", command=removed(state.systemd), needed=True, reason="")
        return
    state = read_state()
    if PACKAGE not in state.packages:
        apt.packages(name="Install nftables", packages=[PACKAGE], update=True, no_recommends=True)
    ops.directories(name="Firewall's directory, stamps", current=state.paths, directories=[
        (paths.ETC, "root", "root", "755"), (paths.STAMPS, "root", "root", "700")])
    content = render("firewall/djangohost.nft.j2", ports=ports)
    table = ops.file(name="Firewall rules", path=paths.FIREWALL, content=content, owner="root", group="root",
                     mode="600", current=state.paths.get(paths.FIREWALL))
    changes = [table]
    if state.systemd:
        unit = ops.file(name="Firewall at boot", path=paths.FIREWALL_UNIT,
                        content=render("firewall/djangohost-firewall.service.j2", rules=paths.FIREWALL),
                        owner="root", group="root", mode="644", current=state.paths.get(paths.FIREWALL_UNIT))
        react("Firewall at boot enabled", "systemctl daemon-reload && systemctl enable djangohost-firewall",
              [], [unit])
    react("Firewall applied", f"{NFT} -c -f {paths.FIREWALL} && {NFT} -f {paths.FIREWALL}",
          [Stamp.of(state, paths.stamp("firewall"), content)], changes)


# A host that is no database server keeps no table: its deploy removes one that was (see removed).
COMPONENT = Component("firewall", host_paths=(paths.FIREWALL, paths.stamp("firewall")))
