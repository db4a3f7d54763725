"""The last lines of an app's logs (its Gunicorn, its processes, its jobs, its Nginx site's access
and error logs), merged by time, labelled by log and, when the app runs on several servers, by
server; or, with follow=yes, every new line too until interrupted. Changes nothing.

    pyinfra INVENTORY deploys/logs.py --data app=shop
    pyinfra INVENTORY deploys/logs.py --data app=shop --data process=worker --data lines=200
    pyinfra INVENTORY deploys/logs.py --data app=shop --data since=10m      # or 2h, 1d, an ISO time
    pyinfra INVENTORY deploys/logs.py --data app=shop --data follow=yes     # until Ctrl-C

Root reads the logs on the host (templates/daytwo/djangohost-logs.py), which escapes every line:
what an app writes there cannot reach the operator's terminal as control characters.
"""

from __future__ import annotations

import click
from pyinfra import host, inventory
from pyinfra.operations import python

from deploys import daytwo
from deploys.components import registry
from deploys.daytwo import remote
from deploys.model import paths
from deploys.model.topology import topology_of
from facts.logs import AppLogs, LogLine, logs_argv

# Every host's lines, kept until the last host of the app has given its own: merged, then shown.
FOUND: dict[str, list[LogLine]] = {}

topology = topology_of(inventory, registry.CONTRACT)
name = daytwo.one_app(topology, host.data, "logs")
count = daytwo.lines(host.data.get("lines"))
since = daytwo.since(host.data.get("since"))
follow = daytwo.switch("follow", host.data.get("follow"))
servers = daytwo.servers(topology, name)
kept = daytwo.chosen_logs([app for server in servers if (app := daytwo.app_on(topology, server, name))],
                          host.data.get("process"))
app = daytwo.app_on(topology, host.name, name)
if app is not None:
    logs = [(label, path) for label, path in daytwo.app_logs(app) if kept is None or label in kept]
    if follow:
        python.call(name=f"{name}: logs followed", function=remote.stream,
                    words=logs_argv(paths.SAFE_TOOL, logs, count, since, follow=True))
    else:
        FOUND[host.name] = host.get_fact(AppLogs, logs=logs, lines=count, since=since, safe_tool=paths.SAFE_TOOL)
        active = [server for server in servers if server in {each.name for each in inventory.get_active_hosts()}]
        if host.name == active[-1]:
            click.echo("\n".join(remote.shown(FOUND, by_server=len(servers) > 1)[-count:]) or f"{name}: no log lines")
