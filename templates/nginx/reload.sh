#!/bin/sh
# managed by djangohost: reloads Nginx (checked first). `nginx -s reload` returns before the new
# workers take over: this waits (5 s at most) until every old worker has stopped accepting, so the
# deploy ends with its configuration live.
set -e
nginx -t -q
master=$(cat /run/nginx.pid)
old=$(cat "/proc/$master/task/$master/children")
nginx -s reload
for _ in $(seq 50); do
  accepting=""
  for pid in $old; do
    [ "$(tr -d '\0' <"/proc/$pid/cmdline" 2>/dev/null)" = "nginx: worker process" ] && accepting=1
  done
  [ -z "$accepting" ] && exit 0
  sleep 0.1
done
echo "nginx: old workers still accepting 5 s after the reload" >&2
exit 1
