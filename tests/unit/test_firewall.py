"""The firewall a host's roles need: what it opens to whom, and a table nft accepts."""

from __future__ import annotations

import os
import subprocess
from types import SimpleNamespace

import pytest

from deploys.components.firewall import Port, ports
from deploys.engine.templates import render
from tests.helpers import EXAMPLES, load_topology


def node(name, groups=(), **data):
    return SimpleNamespace(name=name, groups=list(groups), data=data)


def entry(name):
    return {"name": name, "domains": [f"{name}.test"], "source": str(EXAMPLES / name), "backup": False}


def test_the_database_server_opens_postgresql_to_its_apps_servers_only():
    topology = load_topology([
        node("app1", ["app"], private_address="10.0.0.11", apps=[entry("hello")]),
        node("app2", ["app"], private_address="fd00::12", apps=[entry("goodbye")]),
        node("db1", ["db"], private_address="10.0.0.5")])
    (port,) = ports(topology, "db1")
    assert (port.number, port.allowed) == (5432, ("10.0.0.11", "fd00::12"))
    assert port.sources == {"ip": ["10.0.0.11"], "ip6": ["fd00::12"]}
    assert ports(topology, "app1") == ports(topology, "app2") == []


def test_a_single_server_opens_nothing_to_some_hosts_only():
    topology = load_topology([node("web1", apps=[entry("hello")])])
    assert ports(topology, "web1") == []


def test_the_table_drops_what_it_does_not_allow():
    table = render("firewall/djangohost.nft.j2", ports=[Port(5432, "PostgreSQL", ("10.0.0.11", "fd00::12"))])
    assert "tcp dport 5432 ip saddr { 10.0.0.11 } accept" in table
    assert "tcp dport 5432 ip6 saddr { fd00::12 } accept" in table
    assert table.index("accept\n        tcp dport 5432 drop") > 0
    assert 'iifname "lo" accept' in table


@pytest.mark.skipif(os.getuid() != 0, reason="nft checks the table as root, in a network namespace of its own")
def test_nft_accepts_the_table(tmp_path):
    rules = tmp_path / "firewall.nft"
    rules.write_text(render("firewall/djangohost.nft.j2", ports=[
        Port(5432, "PostgreSQL", ("10.0.0.11", "fd00::12")), Port(80, "Nginx", ("10.0.0.2",))]))
    # -c: checked only, in a namespace of its own (this machine's rules are not touched).
    done = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
