"""A Django management command of an app, run as the app (its user, its environment: bin/manage)
on its primary server; its output is printed escaped, then its exit status. A command that fails
fails the run, naming its status.

    pyinfra INVENTORY deploys/manage.py --data app=shop --data command="migrate --plan"
    pyinfra INVENTORY deploys/manage.py --data app=shop --data command=check

The command is split into words as a shell would (quotes kept) and each word reaches manage.py as
it is: no shell reads it. bin/manage, started by root, runs the app in a session of its own,
without root's terminal (templates/app/as-app.sh.j2). For `shell` or `dbshell`, which need a
terminal, see scripts/djangohost-shell.
"""

from __future__ import annotations

import shlex

from pyinfra import host, inventory
from pyinfra.operations import python

from deploys import daytwo
from deploys.components import registry
from deploys.daytwo import remote
from deploys.engine import safe
from deploys.model import paths
from deploys.model.topology import topology_of

topology = topology_of(inventory, registry.CONTRACT)
name = daytwo.one_app(topology, host.data, "manage")
words = daytwo.command_words(host.data.get("command"))
app = daytwo.app_on(topology, host.name, name)
if app is not None and host.name == daytwo.primary(topology, name):
    label = safe.printable(f"{name}: manage {shlex.join(words)}")
    python.call(name=label, function=remote.manage, label=label, words=[paths.manage(app), *words])
