"""MariaDB apps beside a PostgreSQL app on one host, each account identified by its app's system
user (unix_socket) with privileges on its own database only; on Debian 12 through @docker and on
Debian 13 over SSH with sudo."""

from __future__ import annotations

import re
import shlex

import pytest

from tests import targets
from tests.helpers import as_user, copy_example, http_get, pyinfra, sh, write_inventory

pytestmark = pytest.mark.e2e

MARIADB = {"engine": "mariadb"}
# Two MariaDB apps whose names differ where a grant's `_` would match any character.
SHOP, OTHER = "my_shop", "myxshop"
# Debian suite, SSH user (None: @docker).
TARGETS = {"debian12-docker": ("bookworm", None), "debian13-systemd-sudo": ("trixie", targets.SSH_USER)}


@pytest.fixture(scope="module", params=list(TARGETS))
def site(request, container_factory, login, tmp_path_factory):
    suite, user = TARGETS[request.param]
    container = container_factory(systemd=user is not None, suite=suite, ssh=user is not None)
    workdir = tmp_path_factory.mktemp(f"mariadb-{request.param}")
    apps = [{"name": "hello", "domains": ["hello.test"], "source": str(copy_example("hello", workdir))}]
    for name in (SHOP, OTHER):
        source = copy_example("hello", workdir / name)
        apps.append({"name": name, "domains": [domain(name)], "source": str(source), "database": MARIADB})
    via = login(container, user) if user else None

    def inventory(entries: list[dict] = apps):
        return write_inventory(workdir / "inventory.py", container, entries, via)

    first = pyinfra(inventory())
    return {"container": container, "port": targets.published_port(container, 80), "apps": apps,
            "inventory": inventory, "workdir": workdir, "first": first}


def domain(app: str) -> str:
    return f"{app.replace('_', '')}.test"


def visits(site, app: str) -> int:
    status, body = http_get(site["port"], domain(app))
    assert status == 200, body
    found = re.search(r'<span id="visits">(\d+)</span>', body)
    assert found
    return int(found.group(1))


def mariadb(container: str, user: str, *args: str) -> str:
    """The mariadb client run as the system user `user`; its output and errors."""
    return sh(container, f"runuser -u {user} -- mariadb --batch --skip-column-names {' '.join(args)} 2>&1",
              check=False)


def backups(container: str, app: str) -> list[str]:
    return sh(container, f"ls /var/backups/djangohost/{app}").split()


def test_both_engines_serve_and_keep_rows(site):
    for app in ("hello", SHOP, OTHER):
        assert visits(site, app) < visits(site, app)  # each request writes a row
    container = site["container"]
    assert int(mariadb(container, SHOP, SHOP, "-e", "'select count(*) from hello_visit'")) >= 2
    assert sh(container, f"grep ^DATABASE_URL= /webapps/{SHOP}/conf/env") == (
        f"DATABASE_URL='mysql://{SHOP}@/{SHOP}?unix_socket=/run/mysqld/mysqld.sock'")
    assert sh(container, "grep ^DATABASE_URL= /webapps/hello/conf/env") == "DATABASE_URL=postgres://hello@/hello"


def test_second_run_changes_nothing(site):
    assert pyinfra(site["inventory"]()).changed() == []


def test_each_account_reaches_its_own_database_only(site):
    container = site["container"]
    assert mariadb(container, SHOP, SHOP, "-e", "'select current_user()'") == f"{SHOP}@localhost"
    # Not another app's database (not even one its name matches as a pattern), not as another
    # app, not without an account.
    assert f"Access denied for user '{SHOP}'@'localhost' to database '{OTHER}'" in mariadb(
        container, SHOP, OTHER, "-e", "'select 1'")
    assert f"Access denied for user '{OTHER}'@'localhost'" in mariadb(
        container, SHOP, "-u", OTHER, "-e", "'select 1'")
    assert "Access denied for user 'hello'@'localhost'" in mariadb(container, "hello", "-e", "'select 1'")
    assert "Access denied for user 'www-data'@'localhost'" in mariadb(container, "www-data", "-e", "'select 1'")
    grants = sh(container, f"mariadb --batch --raw --skip-column-names -e 'show grants for {SHOP}@localhost'")
    assert grants.splitlines() == [f"GRANT USAGE ON *.* TO `{SHOP}`@`localhost` IDENTIFIED VIA unix_socket",
                                   f"GRANT ALL PRIVILEGES ON `my\\_shop`.* TO `{SHOP}`@`localhost`"]


def test_manage_runs_with_the_sites_database_settings(site):
    out = sh(site["container"], f"/webapps/{SHOP}/bin/manage shell -c \"from django.db import connection; "
                                "c = connection.cursor(); c.execute('select @@sql_mode, @@character_set_connection'); "
                                "print(connection.vendor, *c.fetchone())\"")
    vendor, sql_mode, charset = out.splitlines()[-1].split()  # after the shell's own notice
    assert vendor == "mysql" and "STRICT_TRANS_TABLES" in sql_mode.split(",") and charset == "utf8mb4"


def test_rows_survive_a_redeploy_with_a_new_migration(site):
    container, workdir = site["container"], site["workdir"] / SHOP / "hello" / "hello"
    before = visits(site, SHOP)
    (workdir / "migrations" / "0002_visit_note.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('hello', '0001_initial')]\n"
        "    operations = [migrations.AddField('visit', 'note', models.CharField(default='', max_length=20))]\n")
    (workdir / "models.py").write_text((workdir / "models.py").read_text()
                                       + "    note = models.CharField(default='', max_length=20)\n")
    run = pyinfra(site["inventory"]())
    assert f"Django app | {SHOP}: migrate, collectstatic, candidate check" in run.changed()
    assert visits(site, SHOP) > before
    columns = mariadb(container, SHOP, SHOP, "-e", "'show columns from hello_visit'")
    assert [line.split()[0] for line in columns.splitlines()] == ["id", "at", "note"]
    assert pyinfra(site["inventory"]()).changed() == []
    # The migration was preceded by a dump named after the release that migrated.
    release = sh(container, f"basename $(readlink /webapps/{SHOP}/current)")
    (dump,) = backups(container, SHOP)
    assert dump.endswith(f"-before-{release}")


def test_a_backup_restores_its_apps_database_and_no_other(site):
    container = site["container"]
    pyinfra(site["inventory"](), "--data", f"app={SHOP}", deploy="deploys/backup.py")
    name = [name for name in backups(container, SHOP) if name.endswith("-manual")][-1]
    dump = f"/var/backups/djangohost/{SHOP}/{name}/db.sql.gz"
    assert sh(container, f"zcat {dump} | tail -n 1").startswith("-- Dump completed")
    rows = "'select id, at from hello_visit order by id'"
    saved = mariadb(container, SHOP, SHOP, "-e", rows)
    newest = saved.splitlines()[-1].split()[0]
    other = visits(site, OTHER)
    for _ in range(3):
        visits(site, SHOP)

    pyinfra(site["inventory"](), "--data", f"app={SHOP}", "--data", f"backup={name}", deploy="deploys/restore.py")
    # The rows of the backup, and no later visit but the health gate's own request.
    restored = mariadb(container, SHOP, SHOP, "-e", rows).splitlines()
    assert [row for row in restored if int(row.split()[0]) <= int(newest)] == saved.splitlines()
    assert len(restored) <= len(saved.splitlines()) + 1
    assert visits(site, OTHER) == other + 1  # the other app's database was not touched
    # The account is left with the grant the deploy gives it, on its own database only.
    grants = sh(container, "mariadb --batch --raw --skip-column-names -e "
                f"\"select Db from mysql.db where User = '{SHOP}'\"")
    assert grants == SHOP.replace("_", "\\_")
    assert pyinfra(site["inventory"]()).changed() == []


# Tables the app names so that, put in SQL unquoted, each ends root's statement (a valid move of its
# table `t`, if `t` comes after it in the list) and runs its own; the leading space (a separator to
# str.split, part of the name to MariaDB) splits it off. Several, as MariaDB lists tables in no set
# order: the first of them in the list decides. At most 64 characters, MariaDB's limit.
CRAFTED = [f" t`TO`my_shop`.`u`;CREATE/**/DATABASE/**/djangohost_pwned;#{n}" for n in range(6)]


def test_a_table_name_of_the_apps_cannot_reach_the_sql_root_runs(site):
    container = site["container"]
    name = sh(container, f"/usr/local/sbin/djangohost-backup take {SHOP}").splitlines()[-1]
    create = "CREATE TABLE t (i int); " + "; ".join(f"CREATE TABLE `{table.replace('`', '``')}` (i int)"
                                                  for table in CRAFTED)
    as_user(container, SHOP, f"mariadb {SHOP} -e {shlex.quote(create)}")
    restored = sh(container, f"/usr/local/sbin/djangohost-backup restore {SHOP} {name} 2>&1", check=False)
    databases = sh(container, "mariadb --batch --skip-column-names -e 'show databases'").split()
    assert "djangohost_pwned" not in databases, restored
    assert "restored" in restored, restored
    # The app's table moved with the others, its name whole, into the database the restore kept.
    old = [database for database in databases if database.startswith(f"{SHOP}-before-restore-")][-1]
    tables = sh(container, "mariadb --batch --skip-column-names -e \"select hex(table_name) from "
                           f"information_schema.tables where table_schema = '{old}'\"").split()
    assert {table.encode().hex().upper() for table in [*CRAFTED, "t", "hello_visit"]} <= set(tables), tables
    assert visits(site, SHOP)


def test_purge_removes_the_database_and_the_account(site):
    container = site["container"]
    entries = [{"name": SHOP, "state": "absent", "purge": True},
               *(app for app in site["apps"] if app["name"] != SHOP)]
    pyinfra(site["inventory"](entries))
    listed = sh(container, "mariadb --batch --skip-column-names -e "
                           f"\"show databases; select user from mysql.user where user = '{SHOP}'\"")
    assert SHOP not in listed.split() and OTHER in listed.split()
    assert http_get(site["port"], domain(SHOP)) == (None, "")
    assert visits(site, OTHER) and visits(site, "hello")
    assert pyinfra(site["inventory"](entries)).changed() == []
