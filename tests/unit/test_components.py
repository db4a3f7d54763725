"""Components declare what they need from a host (deploys.components), and the registry assembles
it: nothing a component compares against or installs can be left out of the one HostState read."""

from __future__ import annotations

import dataclasses
import inspect
import re
import subprocess

import pytest
from pydantic import Field, field_validator

from deploys.components import backups, registry
from deploys.components.app import source
from deploys.components.nginx.contract import NginxPart
from deploys.model import inventory, paths, schema, topology
from deploys.model.inventory import DatabaseServer, host_settings
from deploys.model.programs import TEMPLATES
from deploys.model.schema import Part
from facts.state import HostState, UnwatchedPath
from tests.helpers import EXAMPLES, load_apps

# What an app has that no deploy compares against: a user's name, work directories, a marker a
# program reads, and the database server's own file (its state is read on that server).
NOT_COMPARED = {"builder", "build_work", "collected_static", "gunicorn_reloaded", "db_password",
                "guarded_paths"}  # (its pairs are read safely, and watched)

@pytest.fixture
def apps(tmp_path):
    key = tmp_path / "deploy_key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    shop, journal = load_apps("web1", {"apps": [
        {"name": "shop", "domains": ["shop.test"], "source": {"git": "ssh://git@git.test/shop.git", "ref": "main",
                                                                "deploy_key": str(key)},
         "wsgi_module": "shop.wsgi", "settings_module": "shop.settings", "broker": True, "database": False,
         "processes": {"worker": "celery -A shop worker"}, "limits": {"memory": "512M"},
         "schedule": [{"name": "report", "command": "manage report", "at": "daily"}],
         "tls": {"mode": "acme", "email": "ops@shop.test"}, "backup": {"age_recipient": "age1" + "q" * 58}},
        {"name": "journal", "domains": ["journal.test"], "source": str(EXAMPLES / "journal"),
         "database": {"engine": "mariadb"}}]})
    served = dataclasses.replace(journal, name="ledger", database="postgresql",
                                 database_server=DatabaseServer("db1", "10.0.0.5"))
    return [shop, journal, served]


def watched_paths(app) -> set[str]:
    return {*registry.watched(app), *(f"{root}/{path}" for root, path in paths.guarded_paths(app))}


def test_every_path_of_an_app_is_watched_by_its_component(apps):
    """shop has every feature but a database server's, ledger that: each path paths names for it
    is compared against by the component that has it, so it must be watched."""
    shop, _, ledger = apps
    for name, path_of in inspect.getmembers(paths, inspect.isfunction):
        if list(inspect.signature(path_of).parameters) != ["app"] or name in NOT_COMPARED:
            continue
        app = ledger if name in ("pgpass", "db_server_cert", "backup_engine") else shop
        found = path_of(app)  # a path, or a list of them (app_dirs: with their owners and modes)
        for path in [found] if isinstance(found, str) else [item[0] if isinstance(item, tuple) else item
                                                             for item in found]:
            assert path in watched_paths(app), f"paths.{name}({app.name}) has {path}, which no component watches"


def test_a_path_no_component_declares_stops_the_run(tmp_path):
    (tmp_path / "watched").write_text("x")
    fact = HostState()
    command = fact.command(paths=[str(tmp_path / "watched")])
    state = fact.process(subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout.splitlines())
    assert state.paths.get(str(tmp_path / "watched")).kind == "file"
    assert str(tmp_path / "missing") not in {*registry.host_paths()}
    with pytest.raises(UnwatchedPath, match="no component declares it"):
        state.paths.get(str(tmp_path / "elsewhere"))
    with pytest.raises(UnwatchedPath):
        assert str(tmp_path / "elsewhere") in state.paths


def test_what_each_feature_needs_is_installed_when_the_apps_need_it(apps):
    settings = host_settings("web1", {})
    wanted = registry.needs(apps, settings)
    packages = wanted.packages
    assert {"python3", "git", "openssh-client"} <= set(packages.builds)
    # What the apps' checks are run against: their servers, the static files' brotli, the backups'.
    assert {"redis-server", "supervisor", "mariadb-server", "brotli", "cron", "age"} <= set(packages.checks)
    assert {"nginx", "certbot", "logrotate"} <= set(packages.others)
    everything = [*packages.builds, *packages.checks, *packages.others]
    assert len(everything) == len(set(everything))  # each package in one group only
    # PostgreSQL is the database server's: not installed here.
    assert "postgresql" not in everything
    services = {service.name: service.for_checks for service in wanted.services}
    assert services == {"mariadb": True, "supervisor": True, "cron": True, "nginx": False}
    without_broker = registry.needs([apps[1]], settings)
    assert {service.name: service.for_checks for service in without_broker.services}["supervisor"] is False
    assert "redis-server" not in without_broker.packages.checks


def test_an_asgi_apps_reload_has_ss_to_count_the_connections_it_closes(apps):
    settings = host_settings("web1", {})
    (chat,) = load_apps("web1", {"apps": [{"name": "chat", "domains": ["chat.test"], "source": str(EXAMPLES / "chat"),
                                           "server": "asgi", "broker": True, "database": False}]})
    assert "iproute2" in registry.needs([chat], settings).packages.others
    assert "iproute2" not in registry.needs(apps, settings).packages.others


class Knob(Part):
    """A part a new component would bring: one field, its form, its check against the host."""

    FORMS = {"knob": "must be a whole number from 1 to 9"}

    knob: int = Field(5, ge=1, le=9, description="A knob.")


def test_a_components_part_of_the_contract_is_validated_and_read_as_its_own():
    contract = schema.assemble([*schema.parts_of(registry.CONTRACT), Knob])
    entry = {"name": "hello", "domains": ["hello.test"], "source": str(EXAMPLES / "hello")}
    (turned,) = inventory.load_apps("web1", {"apps": [dict(entry, knob=7)]}, contract)
    assert turned.part(Knob).knob == 7
    assert turned.part(NginxPart).client_max_body_size == "10m"  # the other parts are there too
    (default,) = inventory.load_apps("web1", {"apps": [entry]}, contract)
    assert default.part(Knob).knob == 5
    with pytest.raises(inventory.InventoryError,
                       match=r"host web1, app hello, field knob: 12 must be a whole number from 1 to 9"):
        inventory.load_apps("web1", {"apps": [dict(entry, knob=12)]}, contract)
    # Without the part, the field is unknown, and the error lists the fields the contract has.
    with pytest.raises(inventory.InventoryError, match=r"field knob: unknown field \(known fields: .*headers"):
        load_apps("web1", {"apps": [dict(entry, knob=7)]})


def test_two_parts_cannot_declare_one_field():
    class Twice(Part):
        headers: dict[str, str] = Field(default_factory=dict)

    with pytest.raises(TypeError, match="fields declared by two parts of the contract: headers"):
        schema.assemble([*schema.parts_of(registry.CONTRACT), Twice])


def test_a_components_contract_is_part_of_the_model_layer():
    """A component's contract.py reads the model only: the inventory is checked before any
    operation or component is prepared, and the reference is written from it."""
    for contract in sorted((EXAMPLES.parent / "deploys" / "components").glob("*/contract.py")):
        imported = re.findall(r"^(?:from|import) (deploys\.[\w.]+)", contract.read_text(), re.MULTILINE)
        assert all(name.startswith("deploys.model") for name in imported), (contract, imported)
    assert {part.__name__ for part in schema.parts_of(registry.CONTRACT)} == {
        "BrokerPart", "HealthPart", "NginxPart", "LimitsPart", "SchedulePart"}


def test_two_parts_cannot_declare_one_validator():
    """pydantic keeps one validator of a name: a part's would silently replace another's."""
    class Shadow(Part):
        server_name: str = ""

        @field_validator("server_name")
        @classmethod
        def _name(cls, value: str) -> str:  # AppEntry's own validator of `name` has this name
            return value

    with pytest.raises(TypeError, match="validators declared by two parts of the contract: _name"):
        schema.assemble([*schema.parts_of(registry.CONTRACT), Shadow])


SQLITE = schema.Engine("sqlite", "a file in the app's home", driver=lambda settings: "sqlite-utils==3.38",
                       url=lambda app: f"sqlite:///{app.path('db.sqlite3')}", backup="sqlite/backup_sqlite.py")


def test_a_database_engine_is_its_components_own():
    """A new engine is declared by its component (contract.py: schema.Engine) and assembled into
    the contract: chosen by name, its URL, its driver, its place in the reference, the refusal on
    a database server, read from it and no list of the model."""
    contract = schema.assemble(schema.parts_of(registry.CONTRACT), [*registry.CONTRACT.ENGINES.values(), SQLITE])
    entry = {"name": "hello", "domains": ["hello.test"], "source": str(EXAMPLES / "hello"),
             "database": {"engine": "sqlite"}}
    (app,) = inventory.load_apps("web1", {"apps": [entry]}, contract)
    settings = host_settings("web1", {})
    assert app.engine is SQLITE and app.engine.url(app) == "sqlite:////webapps/hello/db.sqlite3"
    assert "sqlite-utils==3.38" in source.venv_packages(app, settings)
    assert backups.engines([app]) == {"/usr/local/lib/djangohost-backup/sqlite.py": "sqlite/backup_sqlite.py"}
    assert "sqlite" in contract.model_json_schema()["$defs"]["DatabaseEntry"]["properties"]["engine"]["enum"]
    assert topology._remote_problem(app, ["db1"]) == (
        "database: sqlite runs on the app's own host only; use postgresql, or give this host the db role")
    # Without its component, the engine is not one an app may choose, and the error names those it may.
    with pytest.raises(inventory.InventoryError, match=r"field database: \{'engine': 'sqlite'\} must be true, "
                                                       r'false or \{"engine": postgresql or mariadb\}'):
        load_apps("web1", {"apps": [entry]})


def test_the_engines_are_the_components():
    assert set(registry.CONTRACT.ENGINES) == set(registry.DATABASES) == {"postgresql", "mariadb"}
    for name, database in registry.DATABASES.items():
        assert database.engine is registry.CONTRACT.ENGINES[name]
        assert (TEMPLATES / database.engine.backup).is_file()


def test_an_absent_app_keeps_its_engine():
    """What purge drops and the backup tool's part it keeps are its engine's."""
    (gone,) = load_apps("web1", {"apps": [{"name": "shop", "state": "absent", "purge": True,
                                           "database": {"engine": "mariadb"}}]})
    assert gone.engine is registry.CONTRACT.ENGINES["mariadb"]
    assert registry.watched(gone)
