"""Docker targets for the end-to-end tests: a Debian bookworm image built once (pulled, or
bootstrapped with debootstrap where no registry answers), and fresh containers per module."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests import targets


@pytest.fixture(scope="session")
def docker_ready() -> None:
    targets.ensure_docker()
    targets.ensure_image()


@pytest.fixture(scope="module")
def container_factory(docker_ready) -> Iterator[Callable[..., str]]:
    """Start fresh target containers (ports published on 127.0.0.1); removed after the module."""
    started: list[str] = []

    def start(systemd: bool = False) -> str:
        name = f"djangohost-test-{uuid.uuid4().hex[:8]}"
        targets.start_container(name, systemd=systemd, ports={80: 0})
        started.append(name)
        return name

    yield start
    for name in started:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
