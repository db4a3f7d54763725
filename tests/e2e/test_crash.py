"""A deploy cut at any point loses nothing: pyinfra killed (SIGKILL, its SSH connection with it)
at seeded random moments of deploys that change one app's code and the other's environment,
over SSH as a sudo user, under requests to both. After each cut both apps answer from a release
that was deployed whole; the next run, started at once, goes on from where the cut left the
host; the last one converges, and the one after it changes nothing.

DJANGOHOST_CUTS (default 20) and DJANGOHOST_CUT_SEED (default: from the clock) choose the cuts; the
seed is in every failure's message, and printed.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, http_get, pyinfra, sh, write_inventory
from tests.load import Load
from tests.targets import SSH_USER, published_port

pytestmark = pytest.mark.e2e

# What the host holds when a run after the converging one is not a no-op.
DIAGNOSE = ("date --utc +%T.%N; ls -l --time-style=+%T.%N /webapps/*/releases /webapps/*/venvs /webapps/*/current "
            "/webapps/*/venv /var/lib/djangohost/applied /var/lib/djangohost/background; "
            "ps -eo pid,lstart,args | grep -v ' \\[' | tail -n 40")
CUTS = int(os.environ.get("DJANGOHOST_CUTS", "20"))
SEED = int(os.environ.get("DJANGOHOST_CUT_SEED", str(int(time.time()))))


@pytest.fixture(scope="module")
def site(container_factory, login, tmp_path_factory):
    from tests.helpers import copy_example

    container = container_factory(ssh=True)
    workdir = tmp_path_factory.mktemp("crash")
    apps = [{"name": name, "domains": [f"{name}.test"], "source": str(copy_example(name, workdir))}
            for name in ("hello", "goodbye")]
    site = {"container": container, "port": published_port(container, 80), "apps": apps, "workdir": workdir,
            "login": login(container, SSH_USER)}
    pyinfra(inventory(site, 0))
    return site


def inventory(site, change: int):
    """hello says "Hello, change N" (its code), goodbye greets with "change N" (its environment)."""
    views = site["workdir"] / "hello" / "hello" / "views.py"
    views.write_text(re.sub(r'MESSAGE = ".*"', f'MESSAGE = "Hello, change {change}"', views.read_text()))
    hello, goodbye = site["apps"]
    return write_inventory(site["workdir"] / "inventory.py", site["container"],
                           [hello, {**goodbye, "env": {"GREETING": f"change {change}"}}], login=site["login"])


def cut(inventory_path, after: float) -> str:
    """A deploy killed `after` seconds in, with its whole process group (SIGKILL: nothing of it
    runs on, no handler closes anything)."""
    run = subprocess.Popen([sys.executable, "-m", "pyinfra", "-y", str(inventory_path), "deploys/site.py"],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        run.wait(timeout=after)
        return "ended before its cut"
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        return f"cut at {after:.1f} s"


def changes_seen(port: int, domain: str, pattern: str) -> int:
    status, body = http_get(port, domain)
    assert status == 200, (domain, status, body[-500:])
    found = re.search(pattern, body)
    return int(found.group(1)) if found else 0


def test_deploys_cut_at_random_points_lose_nothing_and_converge(site):
    rng = random.Random(SEED)
    print(f"cuts: {CUTS}, seed: {SEED} (DJANGOHOST_CUT_SEED={SEED} repeats them)")
    container, port = site["container"], site["port"]
    log = []
    with Load(port, "hello.test", max_seconds=1800) as hello, Load(port, "goodbye.test", max_seconds=1800) as goodbye:
        for change in range(1, CUTS + 1):
            log.append(f"change {change}: {cut(inventory(site, change), rng.uniform(1, 10))}")
            where = f"seed {SEED}, {log[-1]}"
            # Whatever the cut interrupted, each app answers from a release deployed whole: one of
            # the changes made so far, never a mix (its page and its release agree).
            said = changes_seen(port, "hello.test", r"Hello, change (\d+)")
            greeted = changes_seen(port, "goodbye.test", r'id="greeting">change (\d+)<')
            assert said <= change and greeted <= change, where
            live = sh(container, "readlink /webapps/hello/current")
            assert sh(container, f"test -f /webapps/hello/{live}/manage.py && echo whole") == "whole", where
        last = CUTS
        converged = pyinfra(inventory(site, last), timeout=600)
        again = pyinfra(inventory(site, last))
    print("\n".join(log))
    where = f"seed {SEED}:\n" + "\n".join(log)
    assert converged.returncode == 0, where
    assert changes_seen(port, "hello.test", r"Hello, change (\d+)") == last, where
    assert changes_seen(port, "goodbye.test", r'id="greeting">change (\d+)<') == last, where
    if again.changed():
        print(DIAGNOSE, converged.changed(), again.changed(), sh(container, DIAGNOSE), sep="\n")
    assert again.changed() == [], where
    # No request failed from any cut, on either app.
    assert hello.failed == {} and goodbye.failed == {}, (where, hello.statuses, goodbye.statuses)
    assert hello.served > 100 and goodbye.served > 100
    # Nothing half-made is left for a later run to trust: no release or virtualenv being made.
    leftovers = sh(container, "ls -d /webapps/*/releases/*.* /webapps/*/venvs/*.* 2>/dev/null || true")
    assert leftovers == "", (where, leftovers)
    assert sh(container, "ls -d /run/djangohost/lock 2>/dev/null || true") == "", where
    # Each run that changed an app is in its history, recorded over the sudo login.
    recorded = sh(container, "grep -c '\"result\": \"deployed\"' /var/lib/djangohost/history/goodbye.jsonl")
    assert int(recorded) >= 1, where
