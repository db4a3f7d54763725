"""The same deploy on a host booted with systemd, as a real server is."""

from __future__ import annotations

import pytest

from tests import targets
from tests.helpers import EXAMPLES, http_get, pyinfra, sh, write_inventory

pytestmark = pytest.mark.e2e


def test_deploy_on_a_systemd_host(container_factory, tmp_path):
    container = container_factory(systemd=True)
    apps = [{"name": name, "domains": [f"{name}.test"], "source": str(EXAMPLES / name)}
            for name in ("hello", "goodbye")]
    inventory = write_inventory(tmp_path / "inventory.py", container, apps)

    pyinfra(inventory)

    port = targets.published_port(container, 80)
    for app in ("hello", "goodbye"):
        status, body = http_get(port, f"{app}.test")
        assert status == 200 and f'class="app-{app}"' in body
    assert http_get(port, "unknown.test") == (None, "")
    # Services are systemd's, enabled so they come back after a reboot.
    for service in ("nginx", "supervisor"):
        assert sh(container, f"systemctl is-active {service}") == "active"
        assert sh(container, f"systemctl is-enabled {service}") == "enabled"
    assert pyinfra(inventory).changed() == []
