"""Docker targets for the end-to-end tests: a Debian bookworm image built once (pulled, or
bootstrapped with debootstrap where no registry answers), and fresh containers per module."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import targets
from tests.helpers import Login, copy_example, pyinfra, write_inventory


@pytest.fixture(scope="session")
def docker_ready() -> None:
    targets.ensure_docker()
    targets.ensure_image()


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> Path:
    """A key pair made for this test session: the targets started with ssh=True let it in."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture(scope="module")
def container_factory(docker_ready, ssh_key) -> Iterator[Callable[..., str]]:
    """Start fresh target containers (ports published on 127.0.0.1); removed after the module.
    With ssh=True, sshd runs and publishes its port 22 too (see login); with https=True, its 443."""
    started: list[str] = []

    def start(systemd: bool = False, suite: str = "bookworm", ssh: bool = False, https: bool = False) -> str:
        name = f"djangohost-test-{uuid.uuid4().hex[:8]}"
        ports = {80: 0, **({22: 0} if ssh else {}), **({443: 0} if https else {})}
        targets.start_container(name, systemd=systemd, suite=suite, ports=ports,
                                ssh_public_key=ssh_key.with_suffix(".pub").read_text().strip() if ssh else None)
        started.append(name)
        return name

    yield start
    for name in started:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.fixture(scope="module")
def network_factory(docker_ready) -> Iterator[Callable[..., dict[str, str]]]:
    """Start fresh containers on a Docker network of the module's own, as hosts of one inventory:
    network(*labels, published=labels whose port 80 is published, aliases={label: its other names
    on the network}) returns {label: container}.
    All removed after the module, the network too."""
    started: list[str] = []
    networks: list[str] = []

    def start(*labels: str, published: tuple[str, ...] = (),
              aliases: dict[str, tuple[str, ...]] | None = None) -> dict[str, str]:
        network = f"djangohost-test-{uuid.uuid4().hex[:8]}"
        targets.run("docker", "network", "create", network, stdout=subprocess.DEVNULL)
        networks.append(network)
        containers = {}
        for label in labels:
            containers[label] = f"{network}-{label}"
            started.append(containers[label])
            # NET_ADMIN: a database server of the inventory keeps a firewall (deploys.components.firewall).
            targets.start_container(containers[label], network=network,
                                    aliases=(aliases or {}).get(label, ()),
                                    ports={80: 0} if label in published else None, cap_add=("NET_ADMIN",))
        return containers

    yield start
    subprocess.run(["docker", "rm", "-f", *started], capture_output=True)
    for network in networks:
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


@pytest.fixture(scope="session")
def login(ssh_key) -> Callable[[str, str], Login]:
    """login(container, user): how pyinfra reaches a container started with ssh=True as `user`
    (root, or targets.SSH_USER with sudo)."""
    return lambda container, user: Login(user, targets.published_port(container, 22), ssh_key)


@pytest.fixture(scope="module")
def deploy_examples(container_factory, tmp_path_factory) -> Callable[..., dict]:
    """Deploy copies of example apps on a fresh container, as the tests of a module share them.

    deploy_examples(label, {"hello": {extra fields}, ...}, *pyinfra_args, **host_data) returns
    container, port (its Nginx on 127.0.0.1), apps, inventory, workdir (the copies) and first
    (the first run).
    """

    def deploy(label: str, apps: dict[str, dict], *args: str, **host_data: object) -> dict:
        container = container_factory()
        workdir = tmp_path_factory.mktemp(label)
        entries = [{"name": name, "domains": [f"{name}.test"], "source": str(copy_example(name, workdir)), **extra}
                   for name, extra in apps.items()]
        inventory = write_inventory(workdir / "inventory.py", container, entries, **host_data)
        first = pyinfra(inventory, *args)
        return {"container": container, "port": targets.published_port(container, 80), "apps": entries,
                "inventory": inventory, "workdir": workdir, "first": first}

    return deploy
