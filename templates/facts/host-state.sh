#!/bin/sh
# managed by djangohost: HostState (facts/state.py), the one fact a deploy reads per host. The
# fact puts its lists in place of the $UPPERCASE words (quoted words, substituted into the text:
# word splitting of the lists then works in plain sh). Written for POSIX sh: pyinfra runs fact
# commands through `sh -c`. Every check exits 0 and reports in its output, so a missing thing is
# an answer, not a failed host.
# shellcheck disable=SC2086,SC2154,SC1091 # the lists are words to split, put in by the fact

# Each path's kind, owner, group, mode and link target, and each file's sha256: one `find` and one
# `sha256sum` for any number of paths (a host with 30 apps asks about 1,300). Only files of at most
# 16 MiB are read (those djangohost writes are far smaller): a file grown huge, even sparse, is
# not read whole; it has no sha256 and is written anew. These paths lie in directories only root
# changes; a path in a tree another user writes (guarded_paths) is listed without being read, and
# read by djangohost-safe only (`find -type f` then `sha256sum` would follow a FIFO or a link
# swapped in between, and wait forever).
list_paths() {
  [ $# -gt 0 ] || return 0
  find "$@" -maxdepth 0 -printf 'path\t%p\t%y\t%u\t%g\t%m\t%l\n' 2>/dev/null
  find "$@" -maxdepth 0 -type f -size -16M -exec sha256sum -- {} + 2>/dev/null |
    sed 's/^\([0-9a-f]*\)  /sha256\t\1\t/'
}

printf 'login\t%s\n' "${SUDO_USER:-$(id -un)}"
printf 'cores\t%s\n' "$(nproc 2>/dev/null || echo 1)"
# Nginx's version as installed, or as it would be (apt's candidate; without package lists, the
# Debian release says which syntax to expect).
nginx=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null)
[ -n "$nginx" ] || nginx=$(apt-cache policy nginx 2>/dev/null | sed -n 's/^ *Candidate: //p')
printf 'nginx\t%s\t%s\n' "$nginx" "$(. /etc/os-release 2>/dev/null && echo "$VERSION_ID")"
[ -d /run/systemd/system ] && printf 'systemd\n'
dpkg-query -W -f='package\t${Package}\t${db:Status-Abbrev}\n' $PACKAGES 2>/dev/null
# A host with 30 apps asks about 1,300 paths: each list goes to one command, never one per item.
list_users() { [ $# -eq 0 ] || getent passwd "$@" | awk -F: '{ print "user\t" $1 "\t" $6 }'; }
list_users $USERS
list_groups() { [ $# -eq 0 ] || getent group "$@" | awk -F: '{ print "group\t" $1 }'; }
list_groups $GROUP_NAMES
$PROBES
$SERVICES
list_paths $PATHS
[ -z "$GUARDED" ] || find $GUARDED -maxdepth 0 -printf 'path\t%p\t%y\t%u\t%g\t%m\t%l\n' 2>/dev/null
[ -z "$GUARDED_PAIRS" ] || [ ! -x $SAFE_TOOL ] || $SAFE_TOOL sha256 $GUARDED_PAIRS 2>/dev/null
for p in $ENV_FILES; do
  [ -f "$p" ] || continue
  printf 'env\t%s\t%s\t%s\t%s\n' "$p" \
    "$(grep -v '^SECRET_KEY=' "$p" | sha256sum | cut -c1-64)" \
    "$(sha256sum <"$p" | cut -c1-64)" "$(grep -c '^SECRET_KEY=' "$p")"
done
# Names with a dot are a release or virtualenv being made; `read` is the shell's own (no fork).
for h in $HOMES; do
  for d in "$h"/releases/*; do
    r=${d##*/}; v=; c=
    case $r in *.*|"*") continue ;; esac
    [ -f "$d/.djangohost-venv" ] && read -r v <"$d/.djangohost-venv"
    [ -f "$d/.djangohost-commit" ] && read -r c <"$d/.djangohost-commit"
    printf 'release\t%s\t%s\t%s\t%s\n' "$h" "$r" "$v" "$c"
  done
  for d in "$h"/venvs/*; do
    v=${d##*/}; k=
    case $v in *.*|"*") continue ;; esac
    # Root's once built: one its build identity still owns (a failed build) is not taken as built.
    if ! { [ -O "$d" ] && [ ! -L "$d" ] && [ -f "$d/.djangohost-complete" ]; }; then continue; fi
    read -r k <"$d/.djangohost-complete"
    printf 'venv\t%s\t%s\t%s\n' "$h" "$v" "$k"
  done
done
true
