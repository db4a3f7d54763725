#!/bin/sh
# managed by djangohost: HostState's part for PostgreSQL (deploys/components/postgres): its
# readiness, the roles and databases of the apps named NAMES, and the settings djangohost gives
# the server, in the postgres database (no app's), every name PostgreSQL's own.
pg_ready=
pg_isready -q 2>/dev/null && pg_ready=1
if command -v psql >/dev/null && [ -n "$pg_ready" ]; then
  runuser -u postgres -- psql -XAtqF "$(printf '\t')" -c "SET search_path = pg_catalog, pg_temp" \
    -c "select 'postgres.role', rolname, rolsuper::int, rolcreatedb::int, rolcreaterole::int, rolcanlogin::int
        from pg_catalog.pg_roles where rolname in (NAMES)" \
    -c "select 'postgres.database', datname, pg_catalog.pg_get_userbyid(datdba),
        pg_catalog.has_database_privilege('public', datname, 'CONNECT')::int from pg_catalog.pg_database
        where datname in (NAMES)" \
    -c "select 'postgres.setting', name, setting from pg_catalog.pg_file_settings
        where sourcefile like '%/postgresql.auto.conf' and error is null" \
    -c "select 'postgres.restart' from pg_catalog.pg_settings where pending_restart limit 1"
fi
