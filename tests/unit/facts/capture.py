"""Capture the facts' real command output from containers into the JSON specs beside this file.

    python -m tests.unit.facts.capture DEPLOYED_CONTAINER BARE_CONTAINER

DEPLOYED_CONTAINER has the demo deployed (hello and goodbye); BARE_CONTAINER is a fresh target
with nothing installed. Each spec holds the fact's arguments and the output lines its command
printed; the unit tests feed them through process(). The script puts the deployed container in
each state it captures (a stopped program, a broken Nginx site...) and back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from facts.gunicorn import GunicornSocket
from facts.health import AppHealth
from facts.nginx import Nginx
from facts.state import HostState
from facts.supervisor import SupervisorPrograms

HERE = Path(__file__).parent


def sh(container: str, command: str) -> list[str]:
    proc = subprocess.run(["docker", "exec", container, "sh", "-c", command],
                          capture_output=True, text=True)
    return proc.stdout.splitlines()


def capture(name: str, container: str, fact, setup: str = "", teardown: str = "", **args) -> None:
    if setup:
        sh(container, setup)
    output = sh(container, fact.command(**args))
    if teardown:
        sh(container, teardown)
    (HERE / f"{name}.json").write_text(json.dumps({"args": args, "output": output}, indent=2) + "\n")
    print(name, output[:3])


def capture_state(deployed: str, bare: str) -> None:
    """HostState, whose specs keep the arguments too (the unit tests run its command)."""
    args = {"paths": ["/webapps/hello", "/webapps/hello/current", "/webapps/hello/conf/gunicorn.conf.py",
                      "/webapps/nope"],
            "env_files": ["/webapps/hello/conf/env", "/webapps/nope/conf/env"],
            "users": ["hello", "nope"], "groups": ["webapps", "nogroup2"],
            "packages": ["nginx", "supervisor", "nopackage"]}
    for name, container in (("deployed", deployed), ("fresh", bare)):
        output = sh(container, HostState().command(**args))
        (HERE / f"host_state_{name}.json").write_text(json.dumps({"command_args": args, "output": output},
                                                                 indent=2) + "\n")
        print(f"host_state_{name}", output[:3])


def main(deployed: str, bare: str) -> None:
    capture_state(deployed, bare)
    socket = GunicornSocket()
    capture("socket_accepting", deployed, socket, path="/webapps/hello/run/gunicorn.sock")
    capture("socket_missing", deployed, socket, path="/webapps/nope/run/gunicorn.sock")
    capture("socket_refusing", deployed, socket,
            setup="python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('/tmp/stale.sock')\"",
            teardown="rm -f /tmp/stale.sock", path="/tmp/stale.sock")
    capture("socket_not_a_socket", deployed, socket, path="/etc/hostname")

    health = AppHealth()
    capture("health_ok", deployed, health, domains=["hello.test"], path="/")
    capture("health_mixed", deployed, health, domains=["hello.test", "unknown.test"], path="/no-such-page/")
    capture("health_no_nginx", bare, health, domains=["hello.test"], path="/")

    nginx = Nginx()
    capture("nginx_valid", deployed, nginx)
    capture("nginx_invalid", deployed, nginx,
            setup="echo 'server { listen 80; server_name broken.test; bogus_directive on; }' "
                  ">/etc/nginx/sites-enabled/broken",
            teardown="rm /etc/nginx/sites-enabled/broken")
    capture("nginx_not_installed", bare, nginx)

    programs = SupervisorPrograms()
    capture("supervisor_running", deployed, programs)
    capture("supervisor_stopped_and_fatal", deployed, programs,
            setup="supervisorctl stop goodbye >/dev/null; printf '[program:broken]\\ncommand=/bin/false\\n"
                  "startretries=0\\n' >/etc/supervisor/conf.d/broken.conf; supervisorctl update >/dev/null; sleep 2",
            teardown="rm /etc/supervisor/conf.d/broken.conf; supervisorctl update >/dev/null; "
                     "supervisorctl start goodbye >/dev/null")
    capture("supervisor_not_running", deployed, programs,
            setup="service supervisor stop >/dev/null 2>&1; sleep 5",
            teardown="service supervisor start >/dev/null 2>&1; sleep 5")
    capture("supervisor_not_installed", bare, programs)


if __name__ == "__main__":
    main(*sys.argv[1:3])
