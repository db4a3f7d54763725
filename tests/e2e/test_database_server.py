"""A database server apart from the app server: one inventory with the groups `app` and `db`, two
containers on a network of the test's own. The apps' databases live on the db host, reached
over TLS with a password made there; each app reaches only its own, and only from its server."""

from __future__ import annotations

import shlex

import pytest

from tests import targets
from tests.helpers import copy_example, http_get, pyinfra, sh, write_groups
from tests.targets import address

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def topology(network_factory, tmp_path_factory):
    # `other`: a host of the same network that is none of the apps' servers.
    hosts = network_factory("db", "app", "other", published=("app",))
    db, app = hosts["db"], hosts["app"]
    workdir = tmp_path_factory.mktemp("database-server")
    apps = [{"name": name, "domains": [f"{name}.test"], "source": str(copy_example(name, workdir)),
             "backup": False} for name in ("hello", "goodbye")]
    inventory = write_groups(workdir / "inventory.py", {"app": [(app, {"private_address": address(app), "apps": apps})],
                                                        "db": [(db, {"private_address": address(db)})]})
    first = pyinfra(inventory, json_results=False)
    return {"db": db, "app": app, "other": hosts["other"], "inventory": inventory, "first": first,
            "port": targets.published_port(app, 80), "addresses": (address(db), address(app))}


def connect(container: str, as_user: str, python: str, **options: str) -> str:
    """Try a connection with psycopg from `python` as `as_user`; "ok" or the error."""
    program = ("import psycopg, sys\n"
               "try:\n"
               f"    psycopg.connect(**{options!r}).close(); print('ok')\n"
               "except psycopg.OperationalError as error:\n"
               "    print(str(error).strip().splitlines()[-1])\n")
    return sh(container, f"runuser -u {as_user} -- {python} -c {shlex.quote(program)}")


def test_the_apps_data_is_on_the_database_server(topology):
    db, app, port = topology["db"], topology["app"], topology["port"]
    assert http_get(port, "hello.test")[0] == 200
    status, body = http_get(port, "hello.test")
    assert status == 200 and "Visits" in body
    count = sh(db, "runuser -u postgres -- psql -XAtq -d hello -c 'select count(*) from hello_visit'")
    assert int(count) >= 2
    # The app server runs no database of its own.
    assert sh(app, "dpkg-query -W -f='${Status}' postgresql 2>/dev/null || true") == ""
    assert http_get(port, "goodbye.test")[0] == 200


def test_the_server_listens_on_its_private_address_over_tls_with_scram(topology):
    db = topology["db"]
    db_address, _ = topology["addresses"]
    listening = sh(db, "ss -Hltn 'sport = :5432' | awk '{print $4}'").split()
    assert f"{db_address}:5432" in listening and "127.0.0.1:5432" in listening, listening
    assert not {"0.0.0.0:5432", "*:5432", "[::]:5432"} & set(listening), listening
    shown = sh(db, "runuser -u postgres -- psql -XAtq -c 'show ssl' -c 'show password_encryption'")
    assert shown.split() == ["on", "scram-sha-256"]
    assert sh(db, "runuser -u postgres -- psql -XAtq -c \"select rolpassword from pg_authid "
                  "where rolname = 'hello'\"").startswith("SCRAM-SHA-256$")


def test_passwords_are_the_apps_alone_and_in_no_output(topology):
    db, app = topology["db"], topology["app"]
    line = sh(db, "cat /etc/djangohost/postgresql/hello.pgpass")
    password = line.rsplit(":", 1)[1]
    assert len(password) == 64
    assert sh(db, "stat -c '%U %G %a' /etc/djangohost/postgresql/hello.pgpass") == "root root 600"
    assert sh(app, "stat -c '%U %G %a' /webapps/hello/conf/pgpass") == "hello hello 600"
    assert sh(app, "cat /webapps/hello/conf/pgpass") == line
    denied = sh(app, "runuser -u goodbye -- cat /webapps/hello/conf/pgpass 2>&1 || true")
    assert "Permission denied" in denied
    assert password not in topology["first"].output
    assert sh(db, f"grep -rl {password} /var/log/postgresql || true") == ""
    diff = pyinfra(topology["inventory"], "--dry", "--diff", json_results=False)
    assert password not in diff.output


def test_one_app_cannot_open_anothers_database(topology):
    app = topology["app"]
    db_address, _ = topology["addresses"]
    python = "/webapps/goodbye/venv/bin/python"
    goodbye = dict(host=db_address, user="goodbye", sslmode="verify-full",
                   sslrootcert="/webapps/goodbye/conf/db-server.crt", passfile="/webapps/goodbye/conf/pgpass")
    assert connect(app, "goodbye", python, dbname="goodbye", **goodbye) == "ok"
    # goodbye's own role and password, on hello's database: pg_hba has no line for it.
    refused = connect(app, "goodbye", python, dbname="hello", **goodbye)
    assert "no pg_hba.conf entry" in refused and 'database "hello"' in refused, refused
    # hello's role without hello's password file (goodbye cannot read it).
    refused = connect(app, "goodbye", python, **{**goodbye, "dbname": "hello", "user": "hello"})
    assert "password authentication failed" in refused or "no password supplied" in refused, refused


def test_the_server_refuses_plain_connections_and_other_hosts(topology):
    db, app = topology["db"], topology["app"]
    db_address, _ = topology["addresses"]
    python = "/webapps/hello/venv/bin/python"
    hello = dict(host=db_address, dbname="hello", user="hello", passfile="/webapps/hello/conf/pgpass")
    plain = connect(app, "hello", python, sslmode="disable", **hello)
    assert "no pg_hba.conf entry" in plain and "no encryption" in plain, plain
    # The right role and password, from a host that is not one of the app's servers.
    password = sh(db, "cut -d: -f5 /etc/djangohost/postgresql/hello.pgpass")
    elsewhere = sh(db, f"PGPASSWORD={password} psql 'host={db_address} dbname=hello user=hello sslmode=require' "
                       "-XAtc 'select 1' 2>&1 || true")
    assert "no pg_hba.conf entry" in elsewhere, elsewhere


def reaches(container: str, address: str, port: int) -> bool:
    """Whether a TCP connection from `container` to address:port is accepted within 3 s."""
    probe = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{address}/{port}' 2>/dev/null && echo open || echo closed"
    return sh(container, probe) == "open"


def test_the_database_port_answers_the_apps_servers_only(topology):
    # pg_hba refused the others, but only once PostgreSQL had answered them: any host of the network
    # reached the server's TLS and authentication code. The firewall drops them first.
    db_address, _ = topology["addresses"]
    assert reaches(topology["app"], db_address, 5432)
    assert not reaches(topology["other"], db_address, 5432)
    assert sh(topology["db"], "nft list table inet djangohost | grep -c 'dport 5432'") == "2"
    # Nothing else listens beyond loopback than each host's role needs.
    for host, wanted in (("db", {f"{db_address}:5432"}), ("app", {"0.0.0.0:80", "[::]:80", "*:80"})):
        listening = set(sh(topology[host], "ss -Hltn | awk '{print $4}'").split())
        outside = {socket for socket in listening if not socket.startswith(("127.", "[::1]", "localhost"))}
        assert outside and outside <= wanted, (host, outside)


def test_a_second_run_changes_nothing(topology):
    assert pyinfra(topology["inventory"]).changed() == []
    # The app server keeps its copies; the apps still answer.
    assert http_get(topology["port"], "hello.test")[0] == 200
