"""Rolling deploys: app servers behind the load balancer go live one at a time.

pyinfra runs an operation on every host before the next one, so each app server's turn is fenced
by operations it makes at the same point as its neighbours in the roll (ops.rendezvous): the one
that starts its turn ends the turn of the server before it, and the one that ends it starts the
next. Server N goes live only after server N-1 has; two fences a server, not one for every turn.

In its turn, a server with a release to switch to leaves the load balancer (marked `down` in every
upstream, reloaded), lets the requests it still has finish, switches and passes its health gates,
and comes back. A server whose deploy failed stops the roll: the servers after it keep their
release, their apps are reported failed, and the traffic never had less than all servers but one.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Iterator

from pyinfra import host

from deploys.components.app import AppChanges
from deploys.engine import ops
from deploys.engine.ops import Guard
from deploys.engine.run import RUN
from deploys.model import paths
from deploys.model.topology import Topology

# How long a server out of the load balancer waits for the requests it still has.
DRAIN_SECONDS = 30


def order(topology: Topology) -> list[str]:
    """The app servers behind the load balancer, in the order they go live (the inventory's)."""
    if not topology.balanced:
        return []
    servers = {server for entries in topology.balanced.values() for entry in entries for server in entry.servers}
    return [name for name, apps in topology.apps.items() if apps and topology.address(name) in servers]


def turns(topology: Topology, guards: dict[str, Guard], prepared: dict[str, AppChanges]) -> Iterator[bool]:
    """Yield once per turn of the roll, True in this host's: what the caller does then goes live in
    that turn only. A host not behind the load balancer has one turn, its own."""
    servers = order(topology)
    if host.name not in servers:
        yield True
        return
    mine = servers.index(host.name)
    for turn, server in enumerate(host.loop(servers)):
        if turn in (mine, mine + 1):
            ops.rendezvous(name=f"Roll: {server}'s turn")
        if server != host.name:
            yield False
            continue
        # An app with a release to switch to waits for the servers before this one.
        switching = [name for name, changes in prepared.items() if changes.candidate.will_change]
        for name in switching:
            guards[name].waits.append(functools.partial(went_live, servers[:turn]))
        if switching:
            leave(topology, servers[:turn])
        yield True
        if switching:
            back(topology, servers[:turn])
    ops.rendezvous(name="Roll: every app server's turn is over")


def went_live(servers: list[str]) -> bool:
    """Whether every app of `servers` went live (or had nothing to do), as the run goes."""
    return all(guard.ok() for name in servers for guard in RUN.guards.get(name, []))


def leave(topology: Topology, earlier: list[str]) -> None:
    """Out of the load balancer's upstreams, once the requests it still has are answered; unless
    the roll stopped before this server."""
    balancer = next(iter(topology.balanced))
    ops.elsewhere(name=f"Roll: {host.name} out of the load balancer", on=balancer,
                  command=f"{paths.LB_MEMBER} {shlex.quote(topology.address(host.name))} down",
                  _if=functools.partial(went_live, earlier))
    ops.command(
        name=f"Roll: requests still on {host.name} answered",
        command=(f"timeout {DRAIN_SECONDS} sh -c 'while ss -Htn state established \"( sport = :80 )\" "
                 f"dst \"$1\" | grep -q .; do sleep 0.2; done' sh {shlex.quote(topology.address(balancer))} || true"),
        needed=True, reason="", _if=functools.partial(went_live, earlier),
    )


def back(topology: Topology, earlier: list[str]) -> None:
    balancer = next(iter(topology.balanced))
    ops.elsewhere(name=f"Roll: {host.name} back into the load balancer", on=balancer,
                  command=f"{paths.LB_MEMBER} {shlex.quote(topology.address(host.name))} up",
                  _if=functools.partial(went_live, earlier))
