"""djangohost: every Django app of a host, from packages to Nginx, in the order it is built.

    pyinfra INVENTORY deploys/site.py
"""

from pyinfra import host, inventory

from deploys import base, health, nginx, supervisor
from deploys.app import AppChanges, django_app
from deploys.inventory import host_settings, load_inventory
from deploys.state import read_state
from deploys.supervisor import Reactions

# Every host's apps are checked before any operation is prepared on any host.
apps = load_inventory(inventory)[host.name]
settings = host_settings(host.data)
state = read_state(apps, settings)

# pyinfra types every @deploy as returning one OperationMeta; these return what is annotated.
base.host_base(settings=settings, state=state)
reactions: dict[str, Reactions] = {}
for app in host.loop(apps):
    changes: AppChanges = django_app(app=app, settings=settings, state=state)  # type: ignore[assignment]
    reactions[app.name] = supervisor.program(app=app, state=state, changes=changes)  # type: ignore[assignment]
nginx_reload = nginx.sites(apps=apps, state=state)
for app in host.loop(apps):
    health.gate(app=app, state=state, reactions=reactions[app.name], nginx_reload=nginx_reload)
