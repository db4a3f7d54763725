"""Backup settings in the inventory, the schedule they make, and the retention of backups."""

from __future__ import annotations

import shutil

import pytest

from deploys.components import registry
from deploys.engine.templates import render
from deploys.model.inventory import BACKUP_AT, InventoryError
from deploys.model.programs import TEMPLATES, backup_tool, program
from tests.helpers import EXAMPLES, load_apps


def app(**fields):
    return {"name": "hello", "domains": ["hello.test"], "source": str(EXAMPLES / "hello"), **fields}


def test_defaults_back_up_daily_at_a_minute_of_the_apps_own():
    hello, goodbye = load_apps("web1", {"apps": [app(), app(name="goodbye", domains=["goodbye.test"])]})
    assert hello.backup and goodbye.backup
    assert hello.backup.cron.endswith(" 3 * * *") and hello.backup.period == BACKUP_AT["daily"]
    assert hello.backup.cron != goodbye.backup.cron  # spread, so the apps do not all dump at once
    assert (hello.backup.keep_daily, hello.backup.keep_weekly, hello.backup.keep_migrations) == (7, 4, 5)


def test_app_settings_override_the_hosts_key_by_key():
    data = {"djangohost_backup": {"at": "weekly", "keep_daily": 2},
            "apps": [app(backup={"keep_weekly": 9}),
                     app(name="other", domains=["o.test"], backup={"cron": "*/15 * * * *"}),
                     app(name="quiet", domains=["q.test"], backup=False)]}
    hello, other, quiet = load_apps("web1", data)
    assert hello.backup.cron.endswith(" 3 * * 0") and (hello.backup.keep_daily, hello.backup.keep_weekly) == (2, 9)
    assert other.backup.cron == "*/15 * * * *" and other.backup.period == BACKUP_AT["hourly"]
    assert quiet.backup.cron is None
    cron = render("backups/djangohost-backup.cron.j2", tool="/usr/local/sbin/djangohost-backup", log="/var/log/b.log",
                  notify="/usr/local/sbin/djangohost-notify", apps=[hello, other])
    line = ("*/15 * * * * root /usr/local/sbin/djangohost-backup take other --kind scheduled >>/var/log/b.log 2>&1 || "
            "/usr/local/sbin/djangohost-notify event other backup_failed the scheduled backup failed")
    assert line in cron


@pytest.mark.parametrize(("backup", "message"), [
    ({"at": "nightly"}, "at: 'nightly' must be hourly, daily or weekly (or monthly, for a job), or give cron"),
    ({"cron": "0 3 * *"}, "cron: '0 3 * *' must be five cron fields"),
    ({"cron": "0 3 * * * ; id"}, "cron: '0 3 * * * ; id' must be five cron fields"),
    ({"cron": "@daily"}, "cron: '@daily' must be five cron fields"),
    ({"at": "daily", "cron": "0 3 * * *"}, "give at or cron, not both"),
    ({"keep_daily": -1}, "keep_daily: -1 must be a whole number, 0 or more"),
    ({"keep_weekly": "4"}, "keep_weekly: '4' must be a whole number"),
    ({"media": "yes"}, "media: 'yes' must be true or false"),
    ({"hourly": True}, "unknown key 'hourly'"),
    ("daily", "'daily' must be false or a dict with keys at, keep_daily"),
])
def test_bad_backup_settings_name_host_app_and_field(backup, message):
    with pytest.raises(InventoryError) as raised:
        load_apps("web1", {"apps": [app(backup=backup)]})
    assert f"host web1, app hello, field backup: {message}" in str(raised.value)


def test_bad_host_backup_settings_name_the_host_field():
    with pytest.raises(InventoryError) as raised:
        load_apps("web1", {"djangohost_backup": {"cron": "0 3 * * * rm"}, "apps": [app()]})
    assert "host web1, field djangohost_backup: cron: '0 3 * * * rm' must be five cron fields" in str(raised.value)


def test_retention_keeps_the_last_day_the_newest_of_each_day_and_week_and_recent_migrations():
    names = [
        "20261123T090000-manual",       # the newest: kept
        "20261123T030000-scheduled",    # within a day of the newest: kept
        "20261122T100000-manual",       # within a day: kept
        "20261122T030000-scheduled",    # 22nd, older than a day and not its day's newest: pruned
        "20261121T030000-scheduled",    # newest of the 21st: kept (daily 3: 23rd, 22nd, 21st)
        "20261120T030000-scheduled",    # a 4th day: pruned
        "20261115T030000-scheduled",    # newest of ISO week 46 (weekly 3: weeks 48, 47, 46): kept
        "20261114T030000-scheduled",    # same week, older: pruned
        "20261108T030000-scheduled",    # week 45: pruned
        "20261122T120000-before-20261122T115959-abc",  # the 2 newest dumps before migrations: kept
        "20261110T120000-before-20261110T115959-abc",  # kept
        "20261101T120000-before-20261101T115959-abc",  # pruned
    ]
    assert backup_tool.retained(names, keep_daily=3, keep_weekly=3, keep_migrations=2) == {
        "20261123T090000-manual", "20261123T030000-scheduled", "20261122T100000-manual",
        "20261121T030000-scheduled", "20261115T030000-scheduled",
        "20261122T120000-before-20261122T115959-abc", "20261110T120000-before-20261110T115959-abc"}


def test_retention_never_prunes_the_only_backup():
    assert backup_tool.retained(["20261101T120000-before-x"], 0, 0, 0) == {"20261101T120000-before-x"}


def test_a_dump_of_a_newer_postgresql_is_refused_with_the_reason():
    debian13 = "pg_dump (PostgreSQL) 17.6 (Debian 17.6-0+deb13u1)"
    debian12 = "pg_restore (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
    assert backup_tool.unreadable(debian13, debian12, "PostgreSQL") == (
        "it was dumped by PostgreSQL 17 and this host has PostgreSQL 15, which cannot read it: restore it on "
        "a host with PostgreSQL 17 or later")
    assert backup_tool.unreadable(debian12.replace("pg_restore", "pg_dump"), debian13.replace("pg_dump", "pg_restore"),
                      "PostgreSQL") is None


def test_the_tool_loads_each_engines_part_by_name(tmp_path, monkeypatch):
    """Each engine's part of the tool is its component's file, shipped as <engine>.py (see
    deploys.components.backups.engines) and given the tool to work with."""
    for name, database in registry.DATABASES.items():
        shutil.copy(TEMPLATES / database.engine.backup, tmp_path / f"{name}.py")
    monkeypatch.setattr(backup_tool, "ENGINES", tmp_path)
    for name in registry.DATABASES:
        engine = backup_tool.engine(name)
        assert engine.__init__.__globals__["tool"] is backup_tool
        assert engine("shop").app == "shop" and engine.file == program(registry.DATABASES[name].engine.backup).FILE
    for name in ("sqlite", "../postgresql", "Postgresql"):
        with pytest.raises(backup_tool.Refused, match="no database engine"):
            backup_tool.engine(name)
