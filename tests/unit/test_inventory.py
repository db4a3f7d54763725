"""The inventory contract: every rule, each failing with the host, the app and the field named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from deploys.components import broker, schedule
from deploys.components.nginx.contract import ASGI_READ_TIMEOUT, NginxPart
from deploys.components.registry import CONTRACT, check_host
from deploys.engine.ops import mask_env
from deploys.model import defaults
from deploys.model.inventory import (
    GitSource,
    InventoryError,
    host_settings,
    selected,
)
from facts.state import State
from tests.helpers import EXAMPLES, load_apps, load_inventory

HELLO = str(EXAMPLES / "hello")
GOODBYE = str(EXAMPLES / "goodbye")


def app(**fields):
    return {"name": "hello", "domains": ["hello.test"], "source": HELLO, **fields}


def error(apps, host="web1") -> str:
    with pytest.raises(InventoryError) as raised:
        load_apps(host, {"apps": apps})
    return str(raised.value)


def test_defaults_are_found_in_the_project():
    (hello,) = load_apps("web1", {"apps": [app()]})
    assert hello.wsgi_module == "hello.wsgi"
    assert hello.settings_module == "hello.settings"
    assert hello.requirements is None  # found in the source (templates/app/dependencies.py)
    assert hello.workers is None
    assert hello.home == "/webapps/hello"
    assert hello.socket == "/webapps/hello/run/gunicorn.sock"
    assert hello.part(NginxPart).client_max_body_size == "10m"


def test_relative_source_resolves_against_the_working_directory(monkeypatch):
    monkeypatch.chdir(EXAMPLES.parent)
    (hello,) = load_apps("web1", {"apps": [app(source="examples/hello")]})
    assert hello.source == EXAMPLES / "hello"


def test_host_settings_have_documented_defaults_and_can_be_overridden():
    settings = host_settings("web1", {})
    assert settings.root == defaults.ROOT and settings.python == defaults.PYTHON
    assert settings.gunicorn_version == defaults.GUNICORN_VERSION
    assert host_settings("web1", {"djangohost_root": "/srv/apps/"}).root == "/srv/apps"
    (hello,) = load_apps("web1", {"apps": [app()], "djangohost_root": "/srv/apps"})
    assert hello.home == "/srv/apps/hello"


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"domains": ["a.test"], "source": HELLO}, "name", "is required"),
        (app(domains=[]), "domains", "is required"),
        (app(source=None), "source", "is required"),
        (app(name="Hello"), "name", "must match"),
        (app(name="1hello"), "name", "must match"),
        (app(name="a" * 32), "name", "must match"),
        (app(name="hello-world"), "name", "must match"),
        (app(domains="hello.test"), "domains", "must be a list"),
        (app(domains=["hello..test"]), "domains", "not a valid host name"),
        (app(domains=["hello.test", "hello.test"]), "domains", "twice"),
        (app(source="/nonexistent"), "source", "no manage.py"),
        (app(source=42), "source", "must be a local directory or"),
        (app(source={"git": "https://example.test/a.git"}), "source", "ref: None must name"),
        (app(source={"git": "-u x", "ref": "main"}), "source", "must be a repository URL"),
        (app(source={"git": "/srv/a.git", "ref": "--upload-pack=x"}), "source", "must name a branch"),
        (app(source={"git": "/srv/a.git", "ref": "main", "key": "k"}), "source", "unknown key 'key'"),
        (app(source={"git": "/srv/a.git", "ref": "main", "deploy_key": "/nonexistent"}), "source",
         "deploy_key: '/nonexistent' is not a file"),
        (app(source={"git": "/srv/a.git", "ref": "main"}, wsgi_module=None), "wsgi_module",
         "required with a git source"),
        (app(wsgi_module="hello/wsgi"), "wsgi_module", "dotted"),
        (app(settings_module=3), "settings_module", "dotted"),
        (app(requirements="missing.txt"), "requirements", "not a file"),
        (app(workers=0), "workers", "at least 1"),
        (app(workers="4"), "workers", "whole number"),
        (app(workers=True), "workers", "whole number"),
        (app(env=["A=1"]), "env", "must be a dict"),
        (app(env={"BAD-NAME": "1"}), "env", "not a valid environment variable name"),
        (app(env={"DJANGO_SETTINGS_MODULE": "x"}), "env", "set by djangohost"),
        (app(env={"LIST": [1]}), "env", "string or a number"),
        (app(client_max_body_size="lots"), "client_max_body_size", "10m"),
        (app(colour="blue"), "colour", "unknown field"),
        (app(tls={"mode": "letsencrypt"}), "tls", "mode is provided, self-signed or acme"),
        (app(tls={"mode": "acme"}), "tls", "email: None is not an email address"),
        (app(tls={"mode": "acme", "email": "a@b.test", "directory": "http://x"}), "tls", "https:// URL"),
        (app(tls={"mode": "provided", "cert": "/nonexistent", "key": "/nonexistent"}), "tls",
         "cert: '/nonexistent' is not a file"),
        (app(tls={"mode": "self-signed", "hsts_max_age": "1y"}), "tls", "whole number of seconds"),
        (app(tls={"mode": "self-signed", "email": "a@b.test"}), "tls", "unknown key 'email'"),
        (app(domains=["*.hello.test"], tls={"mode": "acme", "email": "a@b.test"}), "tls", "wildcard"),
    ],
)
def test_bad_entries_name_host_app_and_field(entry, field, message):
    text = error([entry])
    assert text.startswith("host web1, app ")
    assert f"field {field}: " in text
    assert message in text


# Every character Python's str.splitlines() or a terminal acts on: \v \f \x1c-\x1e \x85 U+2028
# U+2029 end a line for splitlines(); ESC, CR, BS, DEL and C1 act on a terminal.
CONTROLS = ["\n", "\r", "\0", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x1b", "\x08",
            "\x7f", "\x9b"]


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("field", ["env", "secrets"])
def test_a_value_holds_no_line_break_of_any_kind_nor_control(field, control):
    text = error([app(**{field: {"TOKEN": f"shown{control}hidden-tail"}})])
    assert text.startswith(f"host web1, app hello, field {field}: TOKEN: value must not hold a line break")
    assert "hidden-tail" not in text


def test_a_value_may_hold_a_tab_quotes_and_shell_characters():
    (hello,) = load_apps("web1", {"apps": [app(secrets={"TOKEN": "a\tb'c\"$(d)`e` ;f"})]})
    assert hello.secrets["TOKEN"] == "a\tb'c\"$(d)`e` ;f"


def test_a_secret_is_masked_whole_in_a_diff():
    content = "A=1\nTOKEN='x\x0btail\u2028more'\nSECRET_KEY=k\n"
    assert mask_env(content, ["TOKEN"]) == "A=1\nTOKEN=********\nSECRET_KEY=********\n"


@pytest.mark.parametrize(("entry", "field"), [
    (app(source={"git": "ext::sh -c touch% /tmp/x", "ref": "main"}), "source"),
    (app(source={"git": "fd::17", "ref": "main"}), "source"),
    (app(source={"git": "https://example.test/a.git\x1b[2J", "ref": "main"}), "source"),
    (app(source={"git": "https://example.test/a b.git", "ref": "main"}), "source"),
    (app(tls={"mode": "acme", "email": "a;touch x@b.test"}), "tls"),
    (app(tls={"mode": "acme", "email": "a@b.test\n"}), "tls"),
    (app(tls={"mode": "acme", "email": "a@b.test", "directory": "https://x.test/dir\nserver = evil"}), "tls"),
    (app(tls={"mode": "acme", "email": "a@b.test", "directory": "https://x.test/ d"}), "tls"),
    (app(health_path="/health\x1b]0;x\x07"), "health_path"),
    (app(health_path="/a\"b"), "health_path"),
    (app(processes={"worker": "celery worker\x85-l info"}), "processes"),
    (app(schedule=[{"name": "job", "command": "manage x\u2028y", "at": "daily"}]), "schedule"),
])
def test_values_that_reach_a_shell_a_file_or_a_terminal_have_one_strict_form(entry, field):
    assert f"host web1, app hello, field {field}: " in error([entry])


@pytest.mark.parametrize("source", [
    {"git": "ssh://git@example.test/shop.git", "ref": "main"}, {"git": "git@example.test:shop.git", "ref": "v1"},
    {"git": "/srv/git/shop.git", "ref": "main"}, {"git": "https://example.test/~team/shop.git?x=1", "ref": "main"},
    {"git": "ssh://git@[fd00::1]:2222/shop.git", "ref": "main"}])
def test_repository_urls_of_the_strict_form(source):
    entry = app(source=source, wsgi_module="hello.wsgi", settings_module="hello.settings")
    (hello,) = load_apps("web1", {"apps": [entry]})
    assert hello.git and hello.git.url == source["git"]


def test_entry_without_usable_name_is_named_by_position():
    assert error([app(), {"domains": ["x.test"], "source": HELLO}]).startswith(
        "host web1, app #2, field name")


def test_duplicate_names_and_domains_on_a_host():
    text = error([app(), app(domains=["other.test"])])
    assert text == "host web1, app hello, field name: duplicate app name"
    text = error([app(), {"name": "goodbye", "domains": ["x.test", "hello.test"], "source": GOODBYE}])
    assert text == ("host web1, app goodbye, field domains: hello.test is already used by app hello")


def test_apps_must_be_a_list_of_dicts():
    with pytest.raises(InventoryError, match="host web1: `apps` must be a list"):
        load_apps("web1", {"apps": {"name": "hello"}})
    assert "an app entry must be a dict" in error(["hello"])


def test_project_package_that_cannot_be_guessed_must_be_given(tmp_path):
    (tmp_path / "manage.py").write_text("")
    (tmp_path / "requirements.txt").write_text("Django\n")
    text = error([app(source=str(tmp_path))])
    assert "field wsgi_module: cannot be guessed" in text
    (hello,) = load_apps("web1", {"apps": [app(source=str(tmp_path), wsgi_module="site.wsgi",
                                                settings_module="site.settings")]})
    assert hello.requirements is None


def test_the_whole_inventory_is_checked_and_the_bad_host_named():
    hosts = [SimpleNamespace(name="web1", data={"apps": [app()]}),
             SimpleNamespace(name="web2", data={"apps": [app(workers=-1)]})]
    with pytest.raises(InventoryError, match="^host web2, app hello, field workers"):
        load_inventory(hosts)
    assert load_inventory(hosts[:1])["web1"][0].name == "hello"


def test_absent_entries_need_only_a_name():
    (shop,) = load_apps("web1", {"apps": [{"name": "shop", "state": "absent", "purge": True}]})
    assert not shop.present and shop.purge
    assert "field state: 'gone' must be present or absent" in error([app(state="gone")])
    assert "field purge: must be true or false, and true only with state absent" in error([app(purge=True)])


def test_database_secrets_and_reserved_names():
    (hello,) = load_apps("web1", {"apps": [app(secrets={"TOKEN": "x"}, database=False,
                                                env={"DATABASE_URL": "postgres://db.example/shop"})]})
    assert hello.secrets == {"TOKEN": "x"} and not hello.database
    assert "field env: DATABASE_URL is set by djangohost" in error([app(env={"DATABASE_URL": "x"})])
    assert "field secrets: TOKEN is also in env" in error([app(env={"TOKEN": "a"}, secrets={"TOKEN": "b"})])
    assert ('field database: \'yes\' must be true, false or {"engine": postgresql or mariadb}'
            in error([app(database="yes")]))
    assert "field health_path" in error([app(health_path="health")])
    assert "field health_timeout" in error([app(health_timeout=0)])


def test_a_source_inside_another_apps_source_clashes(tmp_path):
    outer = tmp_path / "outer"
    inner = outer / "inner"
    for project in (outer, inner):
        (project / "site").mkdir(parents=True)
        for name in ("manage.py", "site/wsgi.py", "site/settings.py", "requirements.txt"):
            (project / name).write_text("")
    text = error([app(source=str(outer)), {"name": "goodbye", "domains": ["x.test"], "source": str(inner)}])
    assert text.startswith("host web1, app goodbye, field source: ")
    assert "inside the source of app hello" in text
    # The same source twice is fine: each app gets its own copy.
    assert len(load_apps("web1", {"apps": [app(), {"name": "copy", "domains": ["c.test"], "source": HELLO}]})) == 2


def test_selection_of_apps_to_deploy():
    apps = load_apps("web1", {"apps": [app(), {"name": "goodbye", "domains": ["g.test"], "source": GOODBYE}]})
    assert [a.name for a in selected(apps, {"app": "goodbye"})] == ["goodbye"]
    assert [a.name for a in selected(apps, {"app": "hello, goodbye"})] == ["hello", "goodbye"]
    assert selected(apps, {}) == apps
    hosts = [SimpleNamespace(name="web1", data={"apps": [app()], "app": "hello,nope"})]
    with pytest.raises(InventoryError, match="no app named nope in the inventory"):
        load_inventory(hosts)


def test_names_taken_on_the_host_by_someone_else():
    apps = load_apps("web1", {"apps": [app()]})
    check_host("web1", apps, State(users={"hello": "/webapps/hello"}))  # ours: fine
    with pytest.raises(InventoryError, match="^host web1, app hello, field name: the host has a user hello"):
        check_host("web1", apps, State(users={"hello": "/home/hello"}))
    with pytest.raises(InventoryError, match="the host has a group hello"):
        check_host("web1", apps, State(groups={"hello"}))


def test_git_source(tmp_path):
    key = tmp_path / "deploy_key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    [hello] = load_apps("web1", {"apps": [app(
        source={"git": "ssh://git@git.test/hello.git", "ref": "v1.2", "deploy_key": str(key)},
        wsgi_module="hello.wsgi", settings_module="hello.settings")]})
    assert hello.git == GitSource("ssh://git@git.test/hello.git", "v1.2", key)
    assert hello.requirements is None  # found at the deployed commit


def project(root, files: dict[str, str]):
    """A Django project at `root` with these files (and a manage.py and requirements.txt)."""
    for name, text in {"manage.py": "", "requirements.txt": "Django\n", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return str(root)


def test_a_settings_package_is_found_through_wsgi_py_or_by_its_production_module(tmp_path):
    (store,) = load_apps("web1", {"apps": [app(source=str(EXAMPLES / "store"))]})
    assert (store.wsgi_module, store.settings_module) == ("store.wsgi", "store.settings.production")
    # wsgi.py names no settings: the settings package's production module.
    source = project(tmp_path / "a", {"site/wsgi.py": "", "site/settings/__init__.py": "",
                                      "site/settings/base.py": "", "site/settings/prod.py": ""})
    (found,) = load_apps("web1", {"apps": [app(source=source)]})
    assert found.settings_module == "site.settings.prod"
    # What wsgi.py names wins over a settings.py.
    source = project(tmp_path / "b", {
        "site/wsgi.py": "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site.conf.live')",
        "site/settings.py": "", "site/conf/__init__.py": "", "site/conf/live.py": ""})
    (found,) = load_apps("web1", {"apps": [app(source=source)]})
    assert found.settings_module == "site.conf.live"


def test_settings_that_cannot_be_guessed_name_the_field_and_what_was_found(tmp_path):
    source = project(tmp_path, {"site/wsgi.py": "", "site/settings/__init__.py": "",
                                "site/settings/base.py": "", "site/settings/dev.py": ""})
    assert error([app(source=source)]) == (
        "host web1, app hello, field settings_module: cannot be guessed (found: site.settings.base, "
        "site.settings.dev); set it")
    two = project(tmp_path / "two", {"a/wsgi.py": "", "b/wsgi.py": ""})
    assert error([app(source=two)]) == (
        "host web1, app hello, field wsgi_module: cannot be guessed (found: a/wsgi.py, b/wsgi.py); set it")


def test_the_database_engine_is_chosen_per_app():
    apps = load_apps("web1", {"apps": [app(), app(name="shop", domains=["shop.test"], database={"engine": "mariadb"}),
                                       app(name="blog", domains=["blog.test"], database={"engine": "postgresql"}),
                                       app(name="wiki", domains=["wiki.test"], database=False)]})
    assert [found.database for found in apps] == ["postgresql", "mariadb", "postgresql", None]
    for bad in ({"engine": "mysql"}, {"engine": "mariadb", "host": "db1"}, {}):
        assert "host web1, app hello, field database:" in error([app(database=bad)])
    assert "DATABASE_URL is set by djangohost" in error([app(database={"engine": "mariadb"},
                                                              env={"DATABASE_URL": "x"})])


@pytest.mark.parametrize(("key", "value"), [
    ("djangohost_group", "webapps;id"), ("djangohost_root", "/srv/web apps"), ("djangohost_root", "srv"),
    ("djangohost_root", "/srv/../etc"), ("djangohost_python", "python3 -c 'import os'"),
    ("djangohost_gunicorn_version", "23.0.0; id"), ("djangohost_packages", ["nginx", "curl|sh"]),
    ("djangohost_packages", "nginx"), ("djangohost_database_driver", "psycopg --index-url x"),
    ("djangohost_mariadb_driver", "PyMySQL\n"), ("djangohost_keep_releases", "abc"),
    ("djangohost_keep_releases", 0), ("djangohost_keep_releases", True),
])
def test_host_settings_that_reach_root_commands_are_checked(key, value):
    with pytest.raises(InventoryError, match=f"^host web1, field {key}: "):
        load_apps("web1", {key: value, "apps": [app()]})


def test_patterns_match_whole_values_and_env_values_stay_on_their_line():
    assert "field name:" in error([app(name="hello\n")])
    assert "field domains:" in error([app(domains=["hello.test\n"])])
    assert "field source: ref:" in error([app(source={"git": "/srv/a.git", "ref": "main\n"},
                                              wsgi_module="a.wsgi", settings_module="a.settings")])
    for value in ("hi\nSECRET_KEY=known", "hi\rthere", "a\0b"):
        assert "field env: GREETING: value must not hold a line break" in error([app(env={"GREETING": value})])
        assert "field secrets: TOKEN: value must not hold" in error([app(secrets={"TOKEN": value})])
    assert "field health_timeout:" in error([app(health_timeout=float("inf"))])
    assert "field health_timeout:" in error([app(health_timeout=float("nan"))])


@pytest.mark.parametrize("name", ["postgres", "template0", "template1", "public", "pg_signal_backend", "default",
                                  "mysql", "sys", "information_schema"])
def test_names_the_host_already_uses_are_refused(name):
    assert f"host web1, app {name}, field name: {name!r} is a name the host already uses" in error(
        [app(name=name)])
    assert f"app {name}, field name:" in error([{"name": name, "state": "absent"}])


def test_a_requirements_file_must_lie_inside_the_source(tmp_path):
    source = tmp_path / "site"
    shutil.copytree(HELLO, source)
    (tmp_path / "outside.txt").write_text("Django\n")
    (source / "r.txt;id;#").write_text("Django\n")
    (source / "link.txt").symlink_to(tmp_path / "outside.txt")
    for requirements in ("../outside.txt", "link.txt", "r.txt;id;#", "/etc/hostname"):
        assert "field requirements:" in error([app(source=str(source), requirements=requirements)]), requirements


def test_every_problem_of_every_host_is_in_one_message():
    hosts = [SimpleNamespace(name="web1", data={"apps": [app(workers=0, domains=["bad..name"]),
                                                         {"name": "two", "domains": ["t.test"], "source": HELLO,
                                                          "colour": "blue"}]}),
             SimpleNamespace(name="web2", data={"djangohost_group": "web apps", "apps": [app()]})]
    with pytest.raises(InventoryError) as raised:
        load_inventory(hosts)
    assert str(raised.value).splitlines() == [
        "host web1, app hello, field domains: 'bad..name' is not a valid host name",
        "host web1, app hello, field workers: 0 must be a whole number of at least 1",
        f"host web1, app two, field colour: unknown field (known fields: {', '.join(sorted(CONTRACT.model_fields))})",
        "host web2, field djangohost_group: 'web apps' must be a group name: lowercase letters, digits, _ and -",
    ]


def test_the_contract_exports_a_json_schema_for_editors():
    out = subprocess.run([sys.executable, "-m", "deploys.reference", "--json"], capture_output=True, text=True,
                         check=True, cwd=EXAMPLES.parent).stdout
    schema = json.loads(out)
    assert schema["properties"]["apps"]["items"] == {"$ref": "#/$defs/AppEntry"}
    entry = schema["$defs"]["AppEntry"]
    assert entry["additionalProperties"] is False
    assert entry["properties"]["name"]["pattern"] == "^[a-z][a-z0-9_]{0,30}$"
    assert entry["properties"]["state"]["enum"] == ["present", "absent"]
    assert schema["properties"]["djangohost_keep_releases"]["minimum"] == 1
    assert set(schema["$defs"]["TlsEntry"]["properties"]["mode"]["enum"]) == {"provided", "self-signed", "acme"}
    assert entry["properties"]["headers"]["type"] == "object"  # a component's part
    assert schema["$defs"]["LimitsEntry"]["properties"]["tasks"]["anyOf"][0]["minimum"] == 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"schedule": [{"name": "sessions", "command": "manage clearsessions", "at": "nightly"}]},
     "field schedule: job sessions: at: 'nightly' must be hourly, daily or weekly (or monthly, for a job)"),
    ({"schedule": [{"name": "sync", "command": "manage sync", "cron": "*/15 * * *"}]},
     "field schedule: job sync: cron: '*/15 * * *' must be five cron fields"),
    ({"schedule": [{"name": "sync", "command": "manage sync", "cron": "0 25 * * *"}]},
     "field schedule: job sync: cron: '0 25 * * *': 25 is outside 0-23"),
    ({"schedule": [{"name": "sync", "command": "manage sync"}]},
     "field schedule: job sync: give at (hourly, daily, weekly or monthly) or cron, one of them"),
    ({"schedule": [{"name": "a", "command": "x", "at": "daily"}, {"name": "a", "command": "y", "at": "hourly"}]},
     "field schedule: job a: two jobs have this name"),
    ({"schedule": [{"name": "a", "command": "date +%s", "at": "daily"}]},
     "field schedule: job a: command: 'date +%s' must be a command line on one line, without %"),
    ({"processes": {"web": "celery -A shop worker"}},
     "field processes: 'web' is the name of the app's Gunicorn; choose another"),
    ({"processes": {"redis": "redis-server"}, "broker": True},
     "field processes: 'redis' is the name of the app's broker; choose another"),
    ({"processes": {"Worker": "celery -A shop worker"}},
     "field processes: 'Worker' is not a process name"),
    ({"processes": {"worker": "celery -A 'shop worker"}},
     "field processes: worker: command: \"celery -A 'shop worker\": No closing quotation"),
    ({"processes": {"worker": {"command": "celery", "stop_wait": 0}}},
     "field processes: worker: stop_wait: 0 must be a whole number of seconds, 1 or more"),
    ({"broker": {"maxmemory": "lots"}}, "field broker: maxmemory: 'lots' must look like 64M, 512K or 1G"),
    ({"limits": {"memory": "512MB"}}, "field limits: memory: '512MB' must be a size in K, M or G, such as 512M"),
    ({"limits": {"cpu": "half"}}, "field limits: cpu: 'half' must be a percentage of one core, such as 50%"),
    ({"limits": {"tasks": 0}}, "field limits: tasks: 0 must be a whole number of at least 1"),
    ({"limits": {"disk": "1G"}}, "field limits: unknown key 'disk'"),
    ({"broker": True, "env": {"CELERY_BROKER_URL": "redis://elsewhere"}},
     "field env: CELERY_BROKER_URL is set by djangohost and cannot be overridden"),
])
def test_bad_processes_broker_and_schedule_name_host_app_and_field(fields, message):
    assert f"host web1, app hello, {message}" in error([app(**fields)])


def test_processes_broker_and_schedule_resolve():
    (resolved,) = load_apps("web1", {"apps": [app(
        broker={"maxmemory": "256M"},
        processes={"worker": "celery -A hello worker", "beat": {"command": "celery -A hello beat", "stop_wait": 30}},
        schedule=[{"name": "sessions", "command": "manage clearsessions", "at": "daily"},
                  {"name": "sync", "command": "manage sync", "cron": "*/15 * * * *"}],
    )]})
    assert broker.maxmemory(resolved) == "256M"
    assert resolved.code_programs == ("hello", "hello-worker", "hello-beat")
    assert [(p.name, p.stop_wait) for p in resolved.processes] == [("worker", 600), ("beat", 30)]
    sessions, sync = schedule.jobs(resolved)
    assert sessions.cron.endswith(" 3 * * *") and sync.cron == "*/15 * * * *"


def test_logs_settings_are_checked():
    with pytest.raises(InventoryError, match="host web1, field djangohost_logs: size: 'big' must look like 10M"):
        host_settings("web1", {"djangohost_logs": {"size": "big"}})
    assert host_settings("web1", {"djangohost_logs": {"keep": 2}}).logs.size == "10M"


def test_limits_a_host_cannot_apply_are_refused_before_anything_runs():
    (limited,) = load_apps("web1", {"apps": [app(limits={"memory": "512M", "cpu": "50%", "tasks": 200})]})
    with pytest.raises(InventoryError, match="host web1, app hello, field limits: this host runs without systemd"):
        check_host("web1", [limited], SimpleNamespace(systemd=False, mirrors={}, users={}, groups=set()))
    check_host("web1", [limited], SimpleNamespace(systemd=True, mirrors={}, users={}, groups=set()))


def test_the_inventory_reference_is_what_the_contract_says():
    """docs/inventory.md is written from the models: `python -m deploys.reference > docs/inventory.md`."""
    from deploys import reference
    assert (EXAMPLES.parent / "docs" / "inventory.md").read_text() == reference.markdown()


@pytest.mark.parametrize(("headers", "why"), [
    ({"X-A": 'a" always; return 200 "x'}, "must be printable characters"),
    ({"X-A": "$request_uri"}, "must be printable characters"),
    ({"X-A": "a}\nserver {"}, "must be printable characters"),
    ({"X A": "b"}, "is not a header name"),
    ({"Strict-Transport-Security": "max-age=1"}, "is sent by djangohost itself"),
    (["X-A"], "must be a dict of header names"),
])
def test_a_header_cannot_reach_nginx_but_as_a_header(headers, why):
    assert "host web1, app hello, field headers: " in error([app(headers=headers)])
    assert why in error([app(headers=headers)])


SHA512 = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG."


@pytest.mark.parametrize(("fields", "why"), [
    ({"basic_auth": {"users": {"ann": "ann-pw"}}}, "field basic_auth: users: ann: not a password hash"),
    ({"basic_auth": {"users": {"ann": SHA512 + "\nbob:x"}}}, "ann: not a password hash"),
    ({"basic_auth": {"users": {"ann:x": SHA512}}}, "'ann:x' must be a dict of user names"),
    ({"basic_auth": {"users": {}}}, "names no user"),
    ({"basic_auth": {"users": {"ann": SHA512}, "paths": ["/a\"; deny all; #"]}}, "must be a list of URL path"),
    ({"basic_auth": {"users": {"ann": SHA512}, "realm": 'x"; allow all; #'}}, "realm: "),
    ({"basic_auth": "ann"}, "field basic_auth: 'ann' must be a dict with keys users"),
    ({"canonical": True, "domains": ["*.hello.test", "hello.test"]}, "field canonical: the first domain"),
    ({"maintenance_allow": ["10.0.0.0/8; allow all"]}, "field maintenance_allow: '10.0.0.0/8; allow all' must be"),
    ({"maintenance_allow": ["fe80::1%eth0"]}, "field maintenance_allow: 'fe80::1%eth0' must be"),
    ({"maintenance_allow": ["office.example.com"]}, "field maintenance_allow: 'office.example.com' must be"),
    ({"allow": {"addresses": ["10.0.0.0/8 1; default 1"]}}, "field allow: addresses: '10.0.0.0/8 1; default 1'"),
    ({"allow": {"addresses": []}}, "field allow: addresses: names no address"),
    ({"allow": {"addresses": ["10.0.0.1"], "paths": ["/a\" 0; default 0; #"]}}, "field allow: paths: "),
    ({"allow": ["10.0.0.1"]}, "field allow: ['10.0.0.1'] must be a dict with keys addresses"),
])
def test_site_controls_take_strict_forms(fields, why):
    message = error([app(**fields)])
    assert why in message, message


CHAT = str(EXAMPLES / "chat")


def chat(**fields):
    return {"name": "chat", "domains": ["chat.test"], "source": CHAT, "server": "asgi", "broker": True, **fields}


def test_an_asgi_app_runs_its_asgi_module_with_a_long_read_timeout():
    (app_,) = load_apps("web1", {"apps": [chat()]})
    assert app_.asgi and app_.application == "chat.asgi:application"
    assert app_.settings_module == "chat.settings" and app_.settings_chosen == "named by asgi.py"
    assert app_.part(NginxPart).proxy_read_timeout(app_.asgi) == ASGI_READ_TIMEOUT and app_.needs_channel_layer
    (hello,) = load_apps("web1", {"apps": [app()]})
    assert not hello.asgi and hello.application == "hello.wsgi:application"
    assert hello.part(NginxPart).proxy_read_timeout(hello.asgi) is None
    (slow,) = load_apps("web1", {"apps": [app(read_timeout=300)]})
    assert slow.part(NginxPart).proxy_read_timeout(slow.asgi) == 300


@pytest.mark.parametrize(("fields", "message"), [
    ({"server": "ASGI"}, "field server: 'ASGI' must be wsgi or asgi"),
    ({"server": True}, "field server: True must be wsgi or asgi"),
    ({"read_timeout": 0}, "field read_timeout: 0 must be a whole number of seconds from 1 to 86400"),
    ({"read_timeout": 86401}, "field read_timeout: 86401 must be a whole number of seconds"),
    ({"read_timeout": "60"}, "field read_timeout: '60' must be a whole number of seconds"),
    ({"read_timeout": True}, "field read_timeout: True must be a whole number of seconds"),
    ({"asgi_module": "hello.asgi"}, "field asgi_module: is for server asgi"),
    ({"server": "asgi", "asgi_module": "hello.asgi; id"}, "field asgi_module: 'hello.asgi; id' is not a dotted"),
])
def test_bad_server_fields_are_refused_with_host_app_and_field(fields, message):
    assert f"host web1, app hello, {message}" in error([app(**fields)])


def test_a_project_that_needs_asgi_is_refused_with_server_wsgi(tmp_path):
    # chat has an asgi.py and no wsgi.py.
    assert error([chat(server="wsgi")]).startswith(
        'host web1, app chat, field server: the project has chat/asgi.py and no wsgi.py: it is an ASGI project; '
        'set "server": "asgi"')
    # A project with both, whose settings install channels (or daphne).
    project = shutil.copytree(HELLO, tmp_path / "hello")
    settings = project / "hello/settings.py"
    settings.write_text(settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'daphne',"))
    assert ("host web1, app hello, field server: the project's settings install daphne, which serve WebSockets "
            'and async views: set "server": "asgi"') in error([app(source=str(project))])
    (served,) = load_apps("web1", {"apps": [app(source=str(project), server="asgi")]})
    assert served.application == "hello.asgi:application" and not served.needs_channel_layer


def test_a_channels_app_needs_its_broker_or_a_layer_of_its_own(tmp_path):
    # chat's own layer is the in-memory one: a process's alone. Said while planning, with the host's state.
    apps = load_apps("web1", {"apps": [chat(broker=False)]})
    with pytest.raises(InventoryError) as raised:
        check_host("web1", apps, State())
    assert str(raised.value).startswith("host web1, app chat, field broker: the project installs channels")
    check_host("web1", load_apps("web1", {"apps": [chat()]}), State())
    project = shutil.copytree(CHAT, tmp_path / "chat")
    settings = project / "chat/settings.py"
    settings.write_text(settings.read_text().replace(
        '"channels.layers.InMemoryChannelLayer"', '"channels_redis.core.RedisChannelLayer"'))
    own = load_apps("web1", {"apps": [chat(source=str(project), broker=False)]})
    assert not own[0].needs_channel_layer
    check_host("web1", own, State())


def test_an_asgi_app_from_git_names_its_asgi_module():
    source = {"git": "https://git.example.test/chat.git", "ref": "main"}
    message = error([chat(source=source, settings_module="chat.settings")])
    assert "host web1, app chat, field asgi_module: is required with a git source" in message
    (app_,) = load_apps("web1", {"apps": [chat(source=source, settings_module="chat.settings",
                                               asgi_module="chat.asgi")]})
    assert app_.application == "chat.asgi:application" and app_.wsgi_module == ""


def test_the_projects_files_the_planner_reads_are_regular_files_read_with_bounds(tmp_path):
    """A committed settings module that is a FIFO or a link to /dev/zero would hang the planner."""
    source = tmp_path / "journal"
    shutil.copytree(EXAMPLES / "journal", source)
    os.mkfifo(source / "journal/settings/fifo.py")
    (source / "journal/settings/zero.py").symlink_to("/dev/zero")
    loaded: list = []
    reader = threading.Thread(target=lambda: loaded.extend(load_apps("web1", {"apps": [
        {"name": "journal", "domains": ["journal.test"], "source": str(source)}]})), daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive() and loaded[0].settings_module == "journal.settings.production"
