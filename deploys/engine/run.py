"""What the hosts of one run share. pyinfra prepares every host's deploy file in turn, in one
process, then runs their operations side by side: what one host's deploy hands to another's goes
through RUN, and through nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine's operations take the lock (engine.lock), which records itself here
    from deploys.engine.ops import Guard


@dataclass
class Run:
    #: Each host's app guards: the roll's later servers wait on the earlier ones', and the run's
    #: last lines name the apps that failed (components.balancer.roll, engine.steps).
    guards: dict[str, list[Guard]] = field(default_factory=dict)
    #: The database servers' files their app servers copy, being read once (components.dbserver):
    #: a greenlet per server, by pyinfra Host.
    server_files: dict[Any, Any] = field(default_factory=dict)
    #: The hosts whose lock this run holds (engine.lock).
    locked: set[str] = field(default_factory=set)


RUN = Run()
