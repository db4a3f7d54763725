"""Put apps in maintenance, or back: visitors get a 503 page (with Retry-After) from Nginx, the
app's processes are left as they are, and its `maintenance_allow` addresses still reach it.

    pyinfra INVENTORY deploys/maintenance.py --data app=shop --data on=yes
    pyinfra INVENTORY deploys/maintenance.py --data app=shop --data on=no

A deploy keeps the mode as it is: its checks ask from the host itself, which maintenance lets
through. On several app servers, each one's Nginx answers for it.
"""

from pyinfra import host, inventory
from pyinfra.facts.files import File

from deploys.components import nginx, registry
from deploys.engine import lock, ops
from deploys.model.inventory import InventoryError, selected
from deploys.model.topology import topology_of

SWITCH = {"yes": True, "on": True, "true": True, "no": False, "off": False, "false": False}

all_apps = topology_of(inventory, registry.CONTRACT).apps[host.name]
if host.data.get("app") in (None, ""):
    raise InventoryError("maintenance: name the apps with --data app=NAME[,NAME]")
if str(host.data.get("on")).lower() not in SWITCH:
    raise InventoryError("maintenance: say --data on=yes or --data on=no")
on = SWITCH[str(host.data.get("on")).lower()]

apps = [app for app in selected(all_apps, host.data) if app.present]
with lock.held(apps):
    for app in host.loop(apps):
        flag = nginx.maintenance_flag(app)
        ops.command(
            name=f"{app.name}: maintenance {'on' if on else 'off'}",
            command=(f"mkdir -p {nginx.MAINTENANCE} && touch {flag}" if on else f"rm -f {flag}"),
            needed=bool(host.get_fact(File, path=flag)) != on,
            reason=f"{app.name} is {'already' if on else 'not'} in maintenance",
        )
