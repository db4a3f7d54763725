"""djangohost: every Django app of a host, from packages to Nginx, in the order it is built.

    pyinfra INVENTORY deploys/site.py
"""

from pyinfra import host, inventory

from deploys import base, nginx, supervisor
from deploys.app import AppChanges, django_app
from deploys.inventory import host_settings, load_inventory
from deploys.state import read_state

# Every host's apps are checked before any operation is prepared on any host.
apps = load_inventory(inventory)[host.name]
settings = host_settings(host.data)
state = read_state(apps, settings)

base.host_base(settings=settings, state=state)
for app in host.loop(apps):
    # pyinfra types every @deploy as returning OperationMeta; django_app returns AppChanges.
    changes: AppChanges = django_app(app=app, settings=settings, state=state)  # type: ignore[assignment]
    supervisor.program(app=app, state=state, changes=changes)
nginx.sites(apps=apps, state=state)
