"""Debian containers that stand in for servers: the demo and the end-to-end tests share them.

No image registry is needed: when `docker pull` fails, the base image is bootstrapped from
Debian's own packages with debootstrap. Containers reach the package mirrors with the host's
apt sources and CA bundle, read at run time (nothing about the mirror is written in the repo).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

IMAGE = "djangohost-target:{suite}-{digest}"
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_APT_CONF = Path("/etc/apt/apt.conf.d/99artifact-registry")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# What a minimal server has before djangohost touches it; systemd so the same image boots
# either as a plain container (`sleep infinity`) or as a real init-managed host; sshd and sudo
# so that it can be reached as real servers are (see start_sshd).
BOOTSTRAP_PACKAGES = "ca-certificates,systemd,systemd-sysv,dbus,procps,iproute2,curl,openssh-server,sudo"
# The non-root SSH user of the targets, with passwordless sudo, as on a fresh cloud server.
SSH_USER = "deploy"
SYSTEMD_RUN_ARGS = [
    "--cap-add", "SYS_ADMIN",
    "--security-opt", "seccomp=unconfined",
    "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, text=True, **kwargs)


def ensure_docker() -> None:
    """Start a Docker engine when none answers (installing it first on a fresh Debian machine)."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return
    if not shutil.which("dockerd") or not shutil.which("debootstrap"):
        run("apt-get", "update", "-q")
        run("apt-get", "install", "-y", "-q", "docker.io", "debootstrap",
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return
    log = open("/var/log/dockerd.log", "a")
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    for _ in range(60):
        if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
            return
        time.sleep(1)
    raise RuntimeError("dockerd did not start: see /var/log/dockerd.log")


def image_exists(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def host_mirror() -> str:
    match = re.search(r"^URIs:\s*(\S+)", HOST_SOURCES.read_text(), re.M)
    if not match:
        raise RuntimeError(f"no URIs: line in {HOST_SOURCES}")
    return match.group(1)


# Run inside a new image: the SSH user with passwordless sudo, as cloud images of Debian have it.
PREPARE_IMAGE = f"""
useradd --create-home --shell /bin/bash {SSH_USER}
echo '{SSH_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{SSH_USER}
chmod 440 /etc/sudoers.d/{SSH_USER}
"""


def image_name(suite: str) -> str:
    """The image of `suite`, named after what goes into it: a changed recipe builds a new one."""
    digest = hashlib.sha256((BOOTSTRAP_PACKAGES + PREPARE_IMAGE).encode()).hexdigest()[:8]
    return IMAGE.format(suite=suite, digest=digest)


def ensure_image(suite: str = "bookworm") -> str:
    """Return the name of a Debian `suite` target image, building it the first time (once: the
    test workers that ask for it at the same time wait for the one building it)."""
    image = image_name(suite)
    if image_exists(image):
        return image
    with open(Path(tempfile.gettempdir()) / f"djangohost-image-{suite}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not image_exists(image):
            _build_image(image, suite)
    return image


def _build_image(image: str, suite: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        pulled = subprocess.run(["docker", "pull", f"debian:{suite}"], capture_output=True)
        if pulled.returncode == 0:
            _build_from_pulled(f"debian:{suite}", image, suite)
            return
        run("debootstrap", "--variant=minbase", f"--include={BOOTSTRAP_PACKAGES}",
            suite, str(rootfs), host_mirror(), stdout=subprocess.DEVNULL)
        _configure_rootfs(rootfs, suite)
        run("chroot", str(rootfs), "sh", "-ec", PREPARE_IMAGE)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run("docker", "import", "-", image, stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()


def _configure_rootfs(rootfs: Path, suite: str) -> None:
    """Give the image the host's way to the package mirrors."""
    if HOST_SOURCES.exists():
        (rootfs / "etc/apt/sources.list").write_text("")
        sources = HOST_SOURCES.read_text().replace("bookworm", suite)
        (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(sources)
    if HOST_APT_CONF.exists():
        shutil.copy(HOST_APT_CONF, rootfs / "etc/apt/apt.conf.d/")
    if HOST_CA.exists():
        ca_dir = rootfs / "usr/local/share/ca-certificates"
        ca_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(HOST_CA, ca_dir / "host-ca.crt")
        run("chroot", str(rootfs), "update-ca-certificates", stdout=subprocess.DEVNULL)
    # pip inside the target trusts the same bundle as the system.
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")


def _build_from_pulled(base: str, image: str, suite: str) -> None:
    name = f"djangohost-build-{suite}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    run("docker", "run", "-d", "--name", name, base, "sleep", "infinity", stdout=subprocess.DEVNULL)
    try:
        run("docker", "exec", name, "sh", "-c",
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            + BOOTSTRAP_PACKAGES.replace(",", " "), stdout=subprocess.DEVNULL)
        run("docker", "exec", name, "sh", "-ec", PREPARE_IMAGE)
        run("docker", "commit", name, image, stdout=subprocess.DEVNULL)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def start_container(name: str, *, systemd: bool = False, ports: dict[int, int] | None = None,
                    suite: str = "bookworm", network: str | None = None, aliases: tuple[str, ...] = (),
                    ssh_public_key: str | None = None, cap_add: tuple[str, ...] = ()) -> str:
    """Start a fresh target container called `name` (replacing any old one) and return its name.

    ports maps container ports to host ports published on 127.0.0.1 (0 picks a free port); aliases
    are more names of it on the network (the domains it answers ACME challenges for). With
    ssh_public_key, sshd runs and lets that key in as root and as SSH_USER (publish port 22).
    cap_add: capabilities it is given (NET_ADMIN: its own firewall, in its own network namespace).
    """
    image = ensure_image(suite)
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    args = ["docker", "run", "-d", "--name", name, "--hostname", name]
    for container_port, host_port in (ports or {}).items():
        args += ["-p", f"127.0.0.1:{host_port or ''}:{container_port}"]
    args += [f"--cap-add={capability}" for capability in cap_add]
    if network:
        args += ["--network", network, *(f"--network-alias={alias}" for alias in aliases)]
    if systemd:
        args += SYSTEMD_RUN_ARGS + [image, "/sbin/init"]
    else:
        args += [image, "sleep", "infinity"]
    run(*args, stdout=subprocess.DEVNULL)
    if systemd:
        wait_for_systemd(name)
    if ssh_public_key:
        start_sshd(name, ssh_public_key, systemd)
    return name


def start_sshd(name: str, public_key: str, systemd: bool) -> None:
    """Let `public_key` log in as root and as SSH_USER, and start sshd."""
    script = f"""
for home in /root /home/{SSH_USER}; do
    mkdir -p $home/.ssh && echo "$1" > $home/.ssh/authorized_keys
    chmod 700 $home/.ssh && chmod 600 $home/.ssh/authorized_keys
done
chown -R {SSH_USER}: /home/{SSH_USER}/.ssh
{"systemctl start ssh" if systemd else "service ssh start >/dev/null"}
"""
    run("docker", "exec", name, "sh", "-ec", script, "sh", public_key)


def wait_for_systemd(name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["docker", "exec", name, "systemctl", "is-system-running"],
                             capture_output=True, text=True).stdout.strip()
        if out in ("running", "degraded"):
            return
        time.sleep(1)
    raise RuntimeError(f"systemd in {name} did not come up")


def address(name: str) -> str:
    """The container's address on its (only) network."""
    return run("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name,
               capture_output=True).stdout.strip()


def published_port(name: str, container_port: int) -> int:
    out = run("docker", "port", name, f"{container_port}/tcp", capture_output=True).stdout
    return int(out.splitlines()[0].rsplit(":", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["image", "start"])
    parser.add_argument("--name", default="djangohost-demo")
    parser.add_argument("--systemd", action="store_true")
    parser.add_argument("--port", type=int, default=8080, help="host port for the container's 80")
    args = parser.parse_args()
    ensure_docker()
    if args.command == "image":
        print(ensure_image())
    else:
        print(start_container(args.name, systemd=args.systemd, ports={80: args.port}))


if __name__ == "__main__":
    main()
