"""Roles and the database server: which host keeps which database, and the refusals, each naming
the host, the app and the field."""

from __future__ import annotations

import re
import subprocess
from types import SimpleNamespace

import pytest

from deploys.components import schedule
from deploys.components.balancer import roll
from deploys.components.dbserver import hba_address
from deploys.components.nginx import site_conf
from deploys.components.nginx.contract import NginxPart
from deploys.components.postgres.contract import database_url
from deploys.engine.templates import render
from deploys.model.inventory import DatabaseServer, InventoryError
from deploys.model.topology import SINGLE_SERVER, is_address, roles
from tests.helpers import EXAMPLES, load_topology


def node(name: str, groups=(), **data):
    return SimpleNamespace(name=name, groups=list(groups), data=data)


def entry(name="hello", **fields):
    return {"name": name, "domains": [f"{name}.test"], "source": str(EXAMPLES / name), "backup": False, **fields}


def refusal(hosts) -> str:
    with pytest.raises(InventoryError) as raised:
        load_topology(hosts)
    return str(raised.value)


def test_a_host_without_roles_is_a_single_server_as_before():
    # pyinfra's name for a container is no address: a single server needs none.
    topology = load_topology([node("@docker/web1", apps=[entry()])])
    assert roll.order(topology) == []
    assert roles(node("web1")) == SINGLE_SERVER
    (hello,) = topology.apps["@docker/web1"]
    assert hello.database_server is None
    assert database_url(hello) == "postgres://hello@/hello"
    assert topology.served == {}


def test_app_servers_keep_their_databases_on_the_database_server():
    apps = [entry(), entry("goodbye")]
    topology = load_topology([
        node("app1", ["app"], private_address="10.0.0.11", apps=apps[:1]),
        node("app2", roles=["app"], private_address="10.0.0.12", apps=apps[1:]),
        node("db1", ["db"], private_address="10.0.0.5", apps=apps),  # declared in group data: not run here
    ])
    assert topology.apps["db1"] == []
    hello = topology.apps["app1"][0]
    assert hello.database_server == DatabaseServer("db1", "10.0.0.5")
    assert database_url(hello) == ("postgres://hello@10.0.0.5:5432/hello?sslmode=verify-full&sslrootcert="
                                   "%2Fwebapps%2Fhello%2Fconf%2Fdb-server.crt&passfile=%2Fwebapps%2Fhello%2Fconf%2Fpgpass")
    assert {served.app.name: served.clients for served in topology.served["db1"]} == {
        "hello": ("10.0.0.11",), "goodbye": ("10.0.0.12",)}
    hba = render("dbserver/pg_hba.conf.j2", databases=[
        {"app": served.app, "clients": [hba_address(client) for client in served.clients]}
        for served in topology.served["db1"]])
    assert 'hostssl "hello" "hello" 10.0.0.11/32 scram-sha-256' in hba
    assert 'hostssl "goodbye" "goodbye" 10.0.0.12/32 scram-sha-256' in hba
    assert "10.0.0.12" not in hba.split('"goodbye"', 1)[0]
    assert [line for line in hba.splitlines() if line.startswith("host ")] == []


@pytest.mark.parametrize("hosts, message", [
    ([node("app1", ["app"], apps=[entry()])],
     "host app1, app hello, field database: this host has no db role"),
    ([node("app1", ["app"], apps=[entry()]), node("db1", ["db"]), node("db2", ["db"])],
     "host app1, app hello, field database: several hosts have the db role (db1, db2)"),
    ([node("app1", ["app"], apps=[entry(database={"engine": "mariadb"})]), node("db1", ["db"])],
     "host app1, app hello, field database: mariadb runs on the app's own host only"),
    ([node("app1", ["app"], apps=[entry(backup=True)]), node("db1", ["db"])],
     "host app1, app hello, field backup: backups of a database on the database server (db1) are not taken yet"),
    ([node("app1", ["app"], apps=[entry(media=False)]), node("app2", ["app"], apps=[entry(media=False)]),
      node("db1", ["db"])],
     "host app2, app hello, field name: hello is on several app servers (app1, app2), which need a load balancer"),
    ([node("lb1", ["lb"]), node("app1", ["app"], apps=[entry()]), node("app2", ["app"], apps=[entry()]),
      node("db1", ["db"])],
     "host app1, app hello, field media: on several app servers, an upload saved on one is missing on the others"),
    ([node("lb1", ["lb"]), node("app1", ["app", "db"], apps=[entry(media=False)]),
      node("app2", ["app"], apps=[entry(media=False)])],
     "host app1, app hello, field database: on several app servers, its database must be on the database server"),
    ([node("lb1", ["lb"]), node("app1", ["app"], apps=[entry(media=False, broker=True)]),
      node("app2", ["app"], apps=[entry(media=False, broker=True)]), node("db1", ["db"])],
     "host app1, app hello, field broker: a broker on each app server would split its tasks"),
    ([node("lb1", ["lb"]), node("app1", ["app"], apps=[entry(primary="app3")]), node("db1", ["db"])],
     "host app1, app hello, field primary: app3 is not one of its app servers (app1)"),
    ([node("lb1", ["lb"]), node("app1", ["app"], apps=[entry(tls={"mode": "provided", "cert": __file__,
                                                                 "key": __file__})]), node("db1", ["db"])],
     "host app1, app hello, field tls: provided certificates on the load balancer are not done yet"),
    ([node("lb1", ["lb"]), node("lb2", ["lb"])],
     "host lb2, field roles: several hosts have the lb role (lb1, lb2)"),
    ([node("app1", ["app"], apps=[entry(servers=["app1", "app9"])]), node("db1", ["db"])],
     "host app1, app hello, field servers: app9 is not an app server of the inventory (app servers: app1)"),
    ([node("web1", ["lb", "app"])],
     "host web1, field roles: a host cannot be both the load balancer and an app server"),
    ([node("lb1", ["lb"]), node("app1", ["app"], apps=[entry()]),
      node("app2", ["app"], apps=[entry("goodbye", domains=["hello.test"])]), node("db1", ["db"])],
     "host app2, app goodbye, field domains: hello.test is already used by app hello on host app1"),
    ([node("app1", roles=["app", "cache"], apps=[entry()])],
     "host app1, field roles: ['app', 'cache'] must be a list of lb, app, db"),
    ([node("app1", ["app"], apps=[entry()]), node("db1", ["db"], private_address="10.0.0.5; rm -rf /")],
     "host db1, field private_address: '10.0.0.5; rm -rf /' is not an IPv4 or IPv6 address"),
])
def test_a_topology_that_cannot_work_is_refused(hosts, message):
    assert message in refusal(hosts)


# Python's ipaddress takes an IPv6 zone id of anything but % and / (a space, a line break, ;, $()).
@pytest.mark.parametrize("address", ["fe80::1%eth0", "fe80::1%eth0;touch x", "fe80::1%x\nhost all all all trust",
                                     "fe80::1%$(id)", "10.0.0.5 ", "10.0.0.5\n", "-10.0.0.5", "10.0.0.5:80",
                                     "[fd00::5]", "db\x1b[2J.internal", ""])
def test_an_address_has_one_strict_form(address):
    assert not is_address(address)
    # Given for any host, used by the inventory's roles or not, it stops the run.
    hosts = [node("app1", ["app"], apps=[entry(database=False)]), node("cache1", [], private_address=address)]
    if address:
        assert "host cache1, field private_address:" in refusal(hosts)


@pytest.mark.parametrize("address", ["10.0.0.5", "fd00::5", "::ffff:10.0.0.5", "db1.internal", "db-1"])
def test_addresses_of_the_strict_form(address):
    assert is_address(address)


def test_an_app_without_a_database_needs_no_database_server():
    topology = load_topology([node("app1", ["app"], apps=[entry(database=False)])])
    assert topology.apps["app1"][0].database_server is None


def test_pg_hba_addresses():
    assert hba_address("10.0.0.5") == "10.0.0.5/32"
    assert hba_address("fd00::5") == "fd00::5/128"
    assert hba_address("app1.internal") == "app1.internal"


def test_the_load_balancer_spreads_an_app_over_its_servers_and_its_primary_runs_the_rest():
    hello = entry(media=False, primary="app2", processes={"beat": {"command": "celery beat", "unique": True},
                                                          "worker": "celery worker"},
                  schedule=[{"name": "tick", "command": "true", "at": "hourly"}])
    topology = load_topology([
        node("lb1", ["lb"], private_address="10.0.0.2"),
        node("app1", ["app"], private_address="10.0.0.11", apps=[hello]),
        node("app2", ["app"], private_address="10.0.0.12", apps=[hello]),
        node("db1", ["db"], private_address="10.0.0.5"),
    ])
    (balanced,) = topology.balanced["lb1"]
    assert balanced.servers == ("10.0.0.11", "10.0.0.12")
    assert roll.order(topology) == ["app1", "app2"]
    on_app1, on_app2 = topology.apps["app1"][0], topology.apps["app2"][0]
    assert on_app1.balancer == on_app2.balancer == "10.0.0.2"
    assert (on_app1.primary, on_app2.primary) == (False, True)
    assert [process.name for process in on_app1.processes] == ["worker"] and schedule.jobs(on_app1) == ()
    assert [process.name for process in on_app2.processes] == ["beat", "worker"] and len(schedule.jobs(on_app2)) == 1
    assert topology.served["db1"][0].clients == ("10.0.0.11", "10.0.0.12")
    site = render("balancer/balancer.conf.j2", apps=[balanced], NginxPart=NginxPart, fail_timeout="10s",
                  connect_timeout="2s",
                  certificates={})
    assert "server 10.0.0.11:80 max_fails=1 fail_timeout=10s;" in site
    assert "proxy_next_upstream_tries 2;" in site
    app_site = site_conf(on_app1, http2_on=False)
    assert "allow 10.0.0.2;\n    allow 127.0.0.1;\n    allow ::1;\n    deny all;" in app_site
    assert "proxy_set_header X-Real-IP $http_x_real_ip;" in app_site


def test_an_app_declared_once_runs_on_the_servers_its_entry_names():
    apps = [entry(servers=["app1"]), entry("goodbye", servers=["app2"])]  # as group data gives them to every host
    topology = load_topology([node("app1", ["app"], private_address="10.0.0.11", apps=apps),
                              node("app2", ["app"], private_address="10.0.0.12", apps=apps),
                              node("db1", ["db"], private_address="10.0.0.5")])
    assert [app.name for app in topology.apps["app1"]] == ["hello"]
    assert [app.name for app in topology.apps["app2"]] == ["goodbye"]


def test_tls_ends_at_the_load_balancer():
    hello = entry(media=False, tls={"mode": "self-signed", "hsts_max_age": 600})
    topology = load_topology([node("lb1", ["lb"], private_address="10.0.0.2"),
                              node("app1", ["app"], private_address="10.0.0.11", apps=[hello]),
                              node("app2", ["app"], private_address="10.0.0.12", apps=[hello]),
                              node("db1", ["db"], private_address="10.0.0.5")])
    (balanced,) = topology.balanced["lb1"]
    site = render("balancer/balancer.conf.j2", apps=[balanced], NginxPart=NginxPart, fail_timeout="10s",
                  connect_timeout="2s",
                  certificates={"hello": ("/etc/djangohost/tls/hello/fullchain.pem", "/key")},
                  acme_webroot="/var/lib/djangohost/acme", tls_protocols="TLSv1.2 TLSv1.3", tls_ciphers="X",
                  http2_on=True)
    assert "listen 443 ssl;" in site and "ssl_certificate /etc/djangohost/tls/hello/fullchain.pem;" in site
    assert 'add_header Strict-Transport-Security "max-age=600" always;' in site
    assert "return 301 https://$host$request_uri;" in site and "proxy_hide_header Strict-Transport-Security;" in site
    app = topology.apps["app1"][0]
    app_site = site_conf(app, http2_on=False)
    assert "443" not in app_site and "ssl_certificate" not in app_site and "Strict-Transport" not in app_site
    assert "proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;" in app_site
    assert app.checked_origins == ("lb-https://hello.test",)


def test_app_servers_with_ipv6_addresses_are_written_as_nginx_reads_them(tmp_path):
    topology = load_topology([node("lb1", ["lb"], private_address="fd00::2"),
                              node("app1", ["app"], private_address="fd00::11", apps=[entry(media=False)]),
                              node("app2", ["app"], private_address="10.0.0.12", apps=[entry(media=False)]),
                              node("db1", ["db"], private_address="fd00::5")])
    (balanced,) = topology.balanced["lb1"]
    site = render("balancer/balancer.conf.j2", apps=[balanced], NginxPart=NginxPart, fail_timeout="10s",
                  connect_timeout="2s",
                  certificates={})
    assert "server [fd00::11]:80 max_fails=1 fail_timeout=10s;" in site
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s;" in site
    # The member tool takes such a server out of its upstreams and puts it back.
    conf = tmp_path / "balanced"
    conf.write_text(site)
    tool = tmp_path / "member"
    tool.write_text(render("balancer/djangohost-lb-member.j2", site=str(conf), reload="true"))
    subprocess.run(["sh", str(tool), "fd00::11", "down"], check=True)
    assert "server [fd00::11]:80 max_fails=1 fail_timeout=10s down;" in conf.read_text()
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s;" in conf.read_text()
    subprocess.run(["sh", str(tool), "fd00::11", "up"], check=True)
    assert conf.read_text() == site


def test_the_only_server_of_an_app_stays_in_its_upstream_in_its_turn(tmp_path):
    # hello on both app servers, goodbye on app1 only: app1's turn takes it out of hello's upstream alone.
    topology = load_topology([node("lb1", ["lb"], private_address="10.0.0.2"),
                              node("app1", ["app"], private_address="10.0.0.11",
                                   apps=[entry(media=False), entry(name="goodbye", servers=["app1"])]),
                              node("app2", ["app"], private_address="10.0.0.12", apps=[entry(media=False)]),
                              node("db1", ["db"], private_address="10.0.0.5")])
    site = render("balancer/balancer.conf.j2", apps=topology.balanced["lb1"], NginxPart=NginxPart,
                  fail_timeout="10s", connect_timeout="2s", certificates={})
    conf = tmp_path / "balanced"
    conf.write_text(site)
    tool = tmp_path / "member"
    tool.write_text(render("balancer/djangohost-lb-member.j2", site=str(conf), reload="true"))
    subprocess.run(["sh", str(tool), "10.0.0.11", "down"], check=True)
    upstreams = dict(re.findall(r"upstream (\w+)_servers \{(.*?)\n\}", conf.read_text(), re.S))
    assert "server 10.0.0.11:80 max_fails=1 fail_timeout=10s down;" in upstreams["hello"]
    assert "server 10.0.0.11:80 max_fails=1 fail_timeout=10s;" in upstreams["goodbye"]
    subprocess.run(["sh", str(tool), "10.0.0.11", "up"], check=True)
    assert conf.read_text() == site
