"""The same deploy on a host booted with systemd, as a real server is; there, an app's limits
hold for all its processes together."""

from __future__ import annotations

import pytest

from tests import targets
from tests.helpers import EXAMPLES, copy_example, http_get, master_pid, pyinfra, sh, wait_for, write_inventory

pytestmark = pytest.mark.e2e

# Starts (Supervisor counts it started after a second), then allocates 300 MB, past goodbye's
# memory limit.
HOG = "python3 -c 'import time; time.sleep(3); hog = bytearray(300 * 1024 * 1024); time.sleep(3600)'"


def serves(port: int, app: str) -> bool:
    """The app's page answers. goodbye's hog presses on goodbye's memory again and again (Supervisor
    starts it anew after each kill), so goodbye may be slow meanwhile: a slow answer is none yet."""
    try:
        status, body = http_get(port, f"{app}.test")
    except TimeoutError:
        return False
    return status == 200 and f'class="app-{app}"' in body


def test_deploy_on_a_systemd_host(container_factory, tmp_path):
    container = container_factory(systemd=True)
    apps = [{"name": "hello", "domains": ["hello.test"], "source": str(EXAMPLES / "hello")},
            {"name": "goodbye", "domains": ["goodbye.test"], "source": str(copy_example("goodbye", tmp_path)),
             "limits": {"memory": "150M", "cpu": "50%", "tasks": 100}, "processes": {"hog": HOG}}]
    inventory = write_inventory(tmp_path / "inventory.py", container, apps)

    pyinfra(inventory)

    port = targets.published_port(container, 80)
    assert serves(port, "hello")
    wait_for(lambda: serves(port, "goodbye"), timeout=60)
    assert http_get(port, "unknown.test") == (None, "")
    # Services are systemd's, enabled so they come back after a reboot.
    for service in ("nginx", "supervisor"):
        assert sh(container, f"systemctl is-active {service}") == "active"
        assert sh(container, f"systemctl is-enabled {service}") == "enabled"

    # goodbye's processes are in its slice, as its user with its groups only (not root's).
    limits = sh(container, "systemctl show djangohost-goodbye.slice -p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec")
    assert limits.splitlines() == ["CPUQuotaPerSecUSec=500ms", f"MemoryMax={150 * 1024 * 1024}", "TasksMax=100"]
    web = master_pid(container, "goodbye")
    assert "djangohost-goodbye.slice" in sh(container, f"cat /proc/{web}/cgroup")
    assert sh(container, f"ps -o user= -p {web}") == "goodbye"
    groups = sh(container, f"grep ^Groups: /proc/{web}/status").split()[1:]
    assert "0" not in groups and sh(container, "getent group webapps | cut -d: -f3") in groups
    assert "djangohost-" not in sh(container, f"cat /proc/{master_pid(container, 'hello')}/cgroup")

    # The hog goes past the limit: the kernel's OOM killer, the only one to send it SIGKILL
    # there, stops it (Supervisor starts it again); the other app answers throughout.
    def killed() -> bool:
        assert http_get(port, "hello.test")[0] == 200
        return "goodbye-hog (terminated by SIGKILL" in sh(container, "cat /var/log/supervisor/supervisord.log")

    wait_for(killed, timeout=60)
    log = sh(container, "cat /var/log/supervisor/supervisord.log")
    assert "goodbye (terminated" not in log and "hello (terminated" not in log, log
    wait_for(lambda: serves(port, "goodbye"), timeout=30)
    assert master_pid(container, "goodbye") == web
    assert pyinfra(inventory).changed() == []
