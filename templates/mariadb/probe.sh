#!/bin/sh
# managed by djangohost: HostState's part for MariaDB (deploys/components/mariadb): the
# accounts, databases and grants of the apps named NAMES, as root.
if command -v mariadb >/dev/null && mariadb-admin ping --silent >/dev/null 2>&1; then
  mariadb --batch --raw --skip-column-names -e "
    select 'mariadb.account', User, plugin from mysql.user where Host = 'localhost' and User in (NAMES);
    select 'mariadb.database', schema_name from information_schema.schemata where schema_name in (NAMES);
    select 'mariadb.grant', User, Db from mysql.db where Host = 'localhost' and User in (NAMES)"
fi
