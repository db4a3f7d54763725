"""An interactive management command (`shell`, `dbshell`) of an app, in a real terminal, from the
operator's machine: the command line that reaches the app's primary server as the inventory says
(ssh -t, or docker exec -it for @docker hosts) and runs bin/manage there as root, which gives the
app a terminal of its own (runuser --pty), never root's. scripts/djangohost-shell runs it; the
logs command follows logs through the same command line (deploys/daytwo/remote.py).

The inventory is read by pyinfra's own loader and checked by djangohost's, as a deploy reads it.
"""

from __future__ import annotations

import shlex
from typing import Any

from deploys import daytwo
from deploys.components import registry
from deploys.model import paths
from deploys.model.inventory import InventoryError
from deploys.model.topology import load_topology

# The host data that says how pyinfra reaches a host over SSH, as ssh options.
SSH_OPTIONS = {"ssh_port": "-p", "ssh_key": "-i", "ssh_config_file": "-F"}


def load(inventory_path: str, app: str) -> tuple[Any, str]:
    """The inventory's host that is `app`'s primary server, and the path of bin/manage there."""
    from pyinfra.api import Config, State
    from pyinfra.context import ctx_inventory, ctx_state
    from pyinfra_cli.inventory import make_inventory  # pyinfra's CLI: only this program needs it

    # As pyinfra's command line does: the inventory file is read in a state of its own.
    state = State(check_for_changes=False)
    ctx_state.set(state)
    inventory = make_inventory(inventory_path, override_data={"app": app})
    ctx_inventory.set(inventory)
    state.init(inventory, Config())
    topology = load_topology(inventory, registry.CONTRACT)
    name = daytwo.one_app(topology, {"app": app}, "djangohost-shell")
    server = daytwo.primary(topology, name)
    found = daytwo.app_on(topology, server, name)
    if found is None:  # one_app found it there
        raise InventoryError(f"app {name}: not on {server}")
    return topology.hosts[server], paths.manage(found)


def ssh_options(data: Any) -> list[str]:
    """The inventory's SSH settings of a host as options of the ssh command."""
    options = [option for key, flag in SSH_OPTIONS.items() if data.get(key) for option in (flag, str(data.get(key)))]
    if data.get("ssh_strict_host_key_checking"):
        options += ["-o", f"StrictHostKeyChecking={data.get('ssh_strict_host_key_checking')}"]
    if data.get("ssh_known_hosts_file"):
        options += ["-o", f"UserKnownHostsFile={data.get('ssh_known_hosts_file')}"]
    return options


def command_line(host: Any, words: list[str], interactive: bool = True) -> list[str]:
    """What runs `words` as root on `host`: the local command's words. Interactive: in a terminal
    (ssh -t, docker exec -it). Otherwise in a terminal of its own on the host all the same (ssh -tt),
    which hangs up when ssh goes, so that what runs there ends with it (docker exec -i: its input
    ends). The remote command is one string of quoted words, which the remote user's shell splits
    back into them."""
    if host.name.startswith("@docker/"):
        return ["docker", "exec", "-it" if interactive else "-i", "--", host.name.removeprefix("@docker/"), *words]
    data = host.data
    sudo = ["sudo", "-H", "--"] if interactive else ["sudo", "-H", "-n", "--"]
    remote = [*(sudo if data.get("_sudo") else []), *words]
    user = data.get("ssh_user")
    destination = f"{user}@{data.get('ssh_hostname') or host.name}" if user else str(data.get("ssh_hostname")
                                                                                        or host.name)
    return ["ssh", "-t" if interactive else "-tt", *ssh_options(data), "--", destination, shlex.join(remote)]
