"""Every entry of each app's history on its hosts: what each run did, when, who ran it, which
release and inventory; changes nothing.

    pyinfra INVENTORY deploys/history.py
    pyinfra INVENTORY deploys/history.py --data app=shop
"""

from __future__ import annotations

import click
from pyinfra import host, inventory

from deploys.components import history, registry
from deploys.model.inventory import selected
from deploys.model.topology import topology_of
from facts.history import History

apps = [app for app in selected(topology_of(inventory, registry.CONTRACT).apps[host.name], host.data)]
found = host.get_fact(History, apps=[app.name for app in apps], tool=history.TOOL) if apps else {}
lines = [f"{host.name}:"]
for app in apps:
    entries = found.get(app.name, [])
    lines += [f"  {app.name}: {len(entries)} entries", *(f"    {history.line(entry)}" for entry in entries)]
click.echo("\n".join(lines))
