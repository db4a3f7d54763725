"""PostgreSQL per app with least privilege, secrets only their app can read, migrations."""

from __future__ import annotations

import hashlib
import re
import secrets

import pytest

from tests.helpers import http_get, master_pid, pyinfra, sh, write_inventory

pytestmark = pytest.mark.e2e

PSQL = "runuser -u postgres -- psql -XAtc"


@pytest.fixture(scope="module")
def deployed(deploy_examples):
    token = f"tok-{secrets.token_hex(12)}"
    site = deploy_examples("database", {
        "hello": {"env": {"GREETING": "hi there"}, "secrets": {"PAYMENT_TOKEN": token}}, "goodbye": {},
    }, "-vvv")
    return {**site, "token": token, "outputs": [site["first"].output]}


def rows(container: str) -> set[str]:
    """The ids of hello's visits, as its own role reads them."""
    return set(sh(container, "runuser -u hello -- psql -d hello -XAtc 'select id from hello_visit'").split())


def visits(deployed, app: str = "hello") -> int:
    status, body = http_get(deployed["port"], f"{app}.test")
    assert status == 200, body
    return int(re.search(r'id="visits">(\d+)<', body).group(1))


def test_each_app_has_its_own_least_privileged_role_and_database(deployed):
    container = deployed["container"]
    roles = sh(container, f"{PSQL} \"select rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin "
                          f"from pg_roles where rolname in ('hello', 'goodbye') order by 1\"")
    assert roles.splitlines() == ["goodbye|f|f|f|t", "hello|f|f|f|t"]
    dbs = sh(container, f"{PSQL} \"select datname, pg_get_userbyid(datdba), "
                        f"has_database_privilege('public', datname, 'CONNECT') from pg_database "
                        f"where datname in ('hello', 'goodbye') order by 1\"")
    assert dbs.splitlines() == ["goodbye|goodbye|f", "hello|hello|f"]
    # The app really runs on it: each page view is a row in its own database.
    before = visits(deployed)
    assert visits(deployed) == before + 1
    rows = sh(container, "runuser -u hello -- psql -d hello -XAtc 'select count(*) from hello_visit'")
    assert int(rows) == before + 1


def test_an_app_cannot_open_another_apps_database(deployed):
    container = deployed["container"]
    for user, other in [("goodbye", "hello"), ("hello", "goodbye")]:
        as_itself = sh(container, f"runuser -u {user} -- psql -d {other} -c 'select 1' 2>&1", check=False)
        assert "permission denied for database" in as_itself
        as_other = sh(container, f"runuser -u {user} -- psql -U {other} -d {other} -c 'select 1' 2>&1", check=False)
        assert "Peer authentication failed" in as_other
    assert sh(container, "runuser -u nobody -- psql -d hello -c 'select 1' 2>&1", check=False).count("FATAL")


def test_environment_file_is_readable_by_its_app_only(deployed):
    container = deployed["container"]
    for app in ("hello", "goodbye"):
        assert sh(container, f"stat -c '%U:%G %a' /webapps/{app}/conf/env") == f"root:{app} 640"
    env = sh(container, "cat /webapps/hello/conf/env")
    assert f"PAYMENT_TOKEN={deployed['token']}" in env
    assert "DATABASE_URL=postgres://hello@/hello" in env
    assert re.search(r"^SECRET_KEY=\S{40,}$", env, re.M)
    for user in ("goodbye", "www-data", "nobody"):
        assert sh(container, f"runuser -u {user} -- cat /webapps/hello/conf/env 2>&1", check=False).endswith(
            "Permission denied")


def test_manage_commands_see_what_the_site_runs_with(deployed):
    container = deployed["container"]
    script = ("import os, hashlib; from django.conf import settings; from django.db import connection; "
              "print(hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest(), "
              "connection.settings_dict['NAME'], os.environ['PAYMENT_TOKEN'] == os.environ.get('PAYMENT_TOKEN'), "
              "os.environ['GREETING'], settings.DEBUG)")
    out = sh(container, f"/webapps/hello/bin/manage shell -c \"{script}\"").splitlines()[-1]
    # The running Gunicorn's environment, as the kernel has it.
    site_env = dict(line.split("=", 1) for line in sh(
        container, f"runuser -u hello -- cat /proc/{master_pid(container, 'hello')}/environ | tr '\\0' '\\n'"
    ).splitlines() if "=" in line)
    site_key = hashlib.sha256(site_env["SECRET_KEY"].encode()).hexdigest()
    assert out == f"{site_key} hello True hi there False"
    assert site_env["PAYMENT_TOKEN"] == deployed["token"]


def test_data_survives_redeploys_and_new_migrations(deployed):
    container = deployed["container"]
    key = sh(container, "grep '^SECRET_KEY=' /webapps/hello/conf/env")
    visits(deployed)
    before = rows(container)
    views = deployed["workdir"] / "hello" / "hello" / "views.py"
    views.write_text(views.read_text().replace("Hello from djangohost", "Hello, with a note"))
    (deployed["workdir"] / "hello" / "hello" / "migrations" / "0002_visit_note.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('hello', '0001_initial')]\n"
        "    operations = [migrations.AddField('visit', 'note', models.CharField(default='', max_length=20))]\n")
    models = deployed["workdir"] / "hello" / "hello" / "models.py"
    models.write_text(models.read_text() + "    note = models.CharField(default='', max_length=20)\n")

    run = pyinfra(deployed["inventory"], "-vvv")
    deployed["outputs"].append(run.output)

    assert "Django app | hello: migrate, collectstatic, candidate check" in run.changed()
    assert "Hello, with a note" in http_get(deployed["port"], "hello.test")[1]
    visits(deployed)  # the page still writes
    assert rows(container) > before  # and every row written before is still there
    columns = sh(container, f"{PSQL} \"select column_name from information_schema.columns "
                            f"where table_name = 'hello_visit' order by 1\" -d hello")
    assert columns.splitlines() == ["at", "id", "note"]
    assert sh(container, "grep '^SECRET_KEY=' /webapps/hello/conf/env") == key
    # Nothing left to migrate: nothing reported.
    assert pyinfra(deployed["inventory"]).changed() == []


def test_a_failing_migration_stops_only_its_app(deployed):
    container, port = deployed["container"], deployed["port"]
    hello_page = http_get(port, "hello.test")[1]
    before = rows(container)
    (deployed["workdir"] / "hello" / "hello" / "migrations" / "0003_fails.py").write_text(
        "from django.db import migrations\n\n\n"
        "def fail(apps, schema_editor):\n"
        "    raise RuntimeError('this migration fails on purpose')\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('hello', '0002_visit_note')]\n"
        "    operations = [migrations.RunPython(fail)]\n")
    views = deployed["workdir"] / "goodbye" / "goodbye" / "views.py"
    views.write_text(views.read_text().replace("Goodbye from djangohost", "Goodbye, new release"))

    run = pyinfra(deployed["inventory"], check=False)

    assert run.returncode != 0
    assert "RuntimeError: this migration fails on purpose" in run.output
    assert "the deploy of hello failed; its error is above" in run.output
    # hello still serves its previous release, with its data; goodbye's deploy went on.
    assert "Hello, with a note" in http_get(port, "hello.test")[1] and "Hello, with a note" in hello_page
    visits(deployed)
    assert rows(container) > before
    assert "Goodbye, new release" in http_get(port, "goodbye.test")[1]
    (deployed["workdir"] / "hello" / "hello" / "migrations" / "0003_fails.py").unlink()
    pyinfra(deployed["inventory"])


def test_no_secret_appears_in_output_diffs_or_logs(deployed):
    container = deployed["container"]
    old_token = deployed["token"]
    new_token = f"tok-{secrets.token_hex(12)}"
    apps = [dict(deployed["apps"][0], secrets={"PAYMENT_TOKEN": new_token}, env={"GREETING": "rotated"}),
            deployed["apps"][1]]
    inventory = write_inventory(deployed["workdir"] / "rotated.py", container, apps)

    pid = master_pid(container, "hello")
    preview = pyinfra(inventory, "--dry", "--diff", "-vvv", json_results=False)
    assert "Will modify /webapps/hello/conf/next/env" in preview.output  # staged, live once checked
    assert "PAYMENT_TOKEN=********" in preview.output  # the diff shows the change, masked
    assert master_pid(container, "hello") == pid
    applied = pyinfra(inventory, "--diff", "-vvv", json_results=False)
    assert "hello: reload gunicorn" in applied.output
    # Graceful: the master stays, its new workers run with the new environment (the page shows
    # GREETING; /proc/PID/environ would not tell, it is the environment at exec time).
    assert master_pid(container, "hello") == pid
    assert '<p id="greeting">rotated</p>' in http_get(deployed["port"], "hello.test")[1]
    assert f"PAYMENT_TOKEN={new_token}" in sh(container, "cat /webapps/hello/conf/env")

    secret_key = sh(container, "sed -n 's/^SECRET_KEY=//p' /webapps/hello/conf/env")
    logs = sh(container, "cat /webapps/*/logs/* /var/log/nginx/* /var/log/supervisor/* "
                         "/var/log/postgresql/* 2>/dev/null", check=False)
    for text in [*deployed["outputs"], preview.output, applied.output, logs]:
        for secret in (secret_key, old_token, new_token):
            assert secret not in text
