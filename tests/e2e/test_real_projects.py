"""Projects laid out as people write them, deployed with documented fields only, and checked as
their users would: a green run means the site works, and what the project brings decides what is
deployed.

- journal: its own error pages, a settings package whose wsgi.py names its dev module (as Wagtail's template does), a
  requirements tree (-r, -c), Django's default (unhashed) static storage, django-compressor in
  offline mode, its own LOGGING (request errors to a null handler), a cache in the app's Redis
  that every request touches, and SECURE_SSL_REDIRECT in its production settings.
- ledger: pyproject.toml and uv.lock at the repository's root, manage.py in src/, Gunicorn
  pinned by the project, a release command, and every page redirecting to a login page.
- almanac: Poetry's [tool.poetry] dependencies and poetry.lock, with a dev group; a login on a path,
  another path for some addresses only.
- tracker: Pipenv's Pipfile and Pipfile.lock, with dev packages; a login on the whole site.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from tests.helpers import copy_example, http_get, master_pid, pyinfra, sh, wait_for, write_inventory

pytestmark = pytest.mark.e2e

# Password hashes as `openssl passwd -6` and `-apr1` print them (the passwords: ann-pw, bob-pw).
ANN = subprocess.run(["openssl", "passwd", "-6", "ann-pw"], capture_output=True, text=True, check=True).stdout.strip()
BOB = subprocess.run(["openssl", "passwd", "-apr1", "bob-pw"], capture_output=True, text=True,
                     check=True).stdout.strip()


@pytest.fixture(scope="module")
def site(container_factory, tmp_path_factory):
    container = container_factory()
    workdir = tmp_path_factory.mktemp("real")
    journal, ledger = copy_example("journal", workdir), copy_example("ledger", workdir)
    apps = [
        {"name": "almanac", "domains": ["almanac.test"], "source": str(copy_example("almanac", workdir)),
         "basic_auth": {"users": {"ann": ANN}, "paths": ["/private/"]},
         "allow": {"addresses": ["192.0.2.0/24"], "paths": ["/staff/"]}},
        {"name": "tracker", "domains": ["tracker.test"], "source": str(copy_example("tracker", workdir)),
         "basic_auth": {"users": {"ann": ANN, "bob": BOB}, "realm": "Tracker staging"}},
        {"name": "journal", "domains": ["journal.test", "www.journal.test"], "canonical": True,
         "error_pages": "errors",
         "source": str(journal), "broker": True,
         "headers": {"X-Frame-Options": "SAMEORIGIN", "Permissions-Policy": "camera=()"}},
        {"name": "ledger", "domains": ["ledger.test"], "source": str(ledger), "project_dir": "src",
         "release_commands": ["manage seed"]},
    ]
    inventory = write_inventory(workdir / "inventory.py", container, apps)
    first = pyinfra(inventory)
    from tests import targets
    return {"container": container, "port": targets.published_port(container, 80), "inventory": inventory,
            "journal": journal, "ledger": ledger, "first": first}


def test_the_production_settings_are_chosen_and_said(site):
    status, body = http_get(site["port"], "journal.test")
    assert status == 200, body
    assert '<p id="env">production</p>' in body
    assert "app journal: settings journal.settings.production" in site["first"].output


def test_the_apps_own_headers_are_on_its_pages_and_files(site):
    container = site["container"]
    for path in ("/", "/static/journal/print.css"):
        headers = sh(container, f"curl -s -o /dev/null -D - -H 'Host: journal.test' http://127.0.0.1{path}").lower()
        assert "permissions-policy: camera=()" in headers, (path, headers)
        # One value, Nginx's: Django's own X-Frame-Options (DENY) is not sent beside it.
        assert headers.count("x-frame-options:") == 1 and "x-frame-options: sameorigin" in headers, (path, headers)


def test_a_projects_ssl_redirect_is_not_kept_without_tls(site):
    # journal's production settings redirect to https, which nobody serves here.
    status, body = http_get(site["port"], "journal.test")
    assert status == 200, (status, body)


def test_django_compressor_offline_is_compressed_at_deploy(site):
    _, body = http_get(site["port"], "journal.test")
    css = re.search(r'href="(/static/CACHE/css/[^"]+\.css)"', body)
    assert css, body
    status, content = http_get(site["port"], "journal.test", css.group(1))
    assert status == 200 and "navy" in content


def test_a_uv_project_in_a_subdirectory_with_its_own_gunicorn(site):
    status, body = http_get(site["port"], "ledger.test", "/login/")
    assert status == 200, body
    assert "<p id='gunicorn'>22.0.0</p>" in body
    # The release command ran once, in the release, before it went live.
    assert "<p id='seeds'>1</p>" in body


@pytest.mark.parametrize(("name", "page"), [("almanac", "<p id='count'>1,234,567</p>"),
                                            ("tracker", "<p id='months'>1</p>")])
def test_poetry_and_pipenv_projects_get_the_main_packages_of_their_lock(site, name, page):
    status, body = http_get(site["port"], f"{name}.test", auth=("ann", "ann-pw"))
    assert status == 200 and page in body, body
    assert "<p id='dev'>absent</p>" in body  # no dev dependency on a server
    # The versions of the lock, not the newest its ranges allow.
    assert sh(site["container"], f"/webapps/{name}/venv/bin/python -c 'import django; print(django.__version__)'") \
        == "5.2.20"


def curl(port: int, host: str, path: str, *options: str) -> str:
    """curl from this machine, a visitor to the container (the container's own requests are its
    checks'): the status, then the redirect's URL."""
    return subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", *options,
                           "-H", f"Host: {host}", f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_a_login_guards_the_whole_site_or_its_paths_and_the_checks_pass_it(site):
    container, port = site["container"], site["port"]
    # The whole site; each user with their own password.
    assert curl(port, "tracker.test", "/") == "401"
    assert curl(port, "tracker.test", "/", "-u", "ann:wrong") == "401"
    assert curl(port, "tracker.test", "/", "-u", "bob:bob-pw") == "200"
    assert 'realm="Tracker staging"' in curl(port, "tracker.test", "/", "-D", "/dev/stdout")
    # A path only: the rest of the site is open.
    assert curl(port, "almanac.test", "/") == "200"
    assert curl(port, "almanac.test", "/private/report") == "401"
    assert curl(port, "almanac.test", "/private/report", "-u", "ann:ann-pw") == "404"  # the app's answer
    # The hashes are Nginx's to read, nobody else's; no password is on the host.
    assert sh(container, "stat -c '%U:%G %a' /etc/nginx/djangohost-logins/tracker") == "root:www-data 640"
    assert "bob-pw" not in sh(container, "cat /etc/nginx/djangohost-logins/tracker")
    # The deploy's own checks went through Nginx without a login: the run was green.
    assert site["first"].returncode == 0


def test_the_apps_own_error_pages_are_sent_when_it_does_not_answer(site):
    container, port = site["container"], site["port"]
    sh(container, "supervisorctl stop journal")
    try:
        status, body = http_get(port, "journal.test")
        assert status == 502 and "The journal is resting" in body, (status, body)
    finally:
        sh(container, "supervisorctl start journal")
    wait_for(lambda: http_get(port, "journal.test")[0] == 200)
    maintenance = ("--data", "app=journal", "--data", "on=yes")
    pyinfra(site["inventory"], *maintenance, deploy="deploys/maintenance.py")
    try:
        status, body = http_get(port, "journal.test")
        assert status == 503 and "The journal is being bound" in body, (status, body)
        assert "Retry-After: 600" in curl(port, "journal.test", "/", "-D", "/dev/stdout")
    finally:
        pyinfra(site["inventory"], "--data", "app=journal", "--data", "on=no", deploy="deploys/maintenance.py")


def test_only_the_allowed_addresses_reach_the_paths_allow_guards(site):
    assert curl(site["port"], "almanac.test", "/staff/report") == "403"
    assert curl(site["port"], "almanac.test", "/") == "200"


def test_the_other_domains_redirect_to_the_canonical_one(site):
    assert curl(site["port"], "www.journal.test", "/print/?page=2") == "301 http://journal.test/print/?page=2"
    assert curl(site["port"], "journal.test", "/") == "200"


def test_maintenance_turns_visitors_away_and_leaves_the_app_running(site):
    container, port, inventory = site["container"], site["port"], site["inventory"]
    before = master_pid(container, "ledger")
    maintenance = ("--data", "app=ledger", "--data", "on=yes")
    assert "ledger: maintenance on" in pyinfra(inventory, *maintenance, deploy="deploys/maintenance.py").changed()
    shown = curl(port, "ledger.test", "/login/", "-D", "/dev/stdout")
    assert shown.startswith("HTTP/1.1 503") and "Retry-After: 600" in shown, shown
    assert "Down for maintenance" in http_get(port, "ledger.test", "/login/")[1]
    assert curl(port, "almanac.test", "/") == "200"  # the other apps serve
    # The host's own checks still reach it: a deploy is green, and keeps the mode.
    pyinfra(inventory)
    assert curl(port, "ledger.test", "/login/") == "503"
    assert pyinfra(inventory, *maintenance, deploy="deploys/maintenance.py").changed() == []
    pyinfra(inventory, "--data", "app=ledger", "--data", "on=no", deploy="deploys/maintenance.py")
    assert curl(port, "ledger.test", "/login/") == "200"
    assert master_pid(container, "ledger") == before  # its processes were left as they were


def test_a_changed_static_file_is_served_after_the_redeploy(site):
    container = site["container"]
    static = "/webapps/journal/static/journal"
    before = sh(container, f"stat -c %Y {static}/site.css.gz {static}/print.css.gz").split()
    (site["journal"] / "journal/static/journal/print.css").write_text("body { color: maroon; }\n")
    run = pyinfra(site["inventory"])
    assert "journal: release" in " ".join(run.changed())
    status, css = http_get(site["port"], "journal.test", "/static/journal/print.css")
    assert status == 200 and "maroon" in css, css
    assert "maroon" in sh(container, f"gunzip -c {static}/print.css.gz")
    after = sh(container, f"stat -c %Y {static}/site.css.gz {static}/print.css.gz").split()
    # Only the file that changed was compressed again.
    assert after[0] == before[0] and after[1] != before[1]


def test_a_rollback_serves_its_releases_static_files_and_a_deploy_the_new_ones(site):
    pyinfra(site["inventory"], "--data", "app=journal", deploy="deploys/rollback.py")
    assert "black" in http_get(site["port"], "journal.test", "/static/journal/print.css")[1]
    pyinfra(site["inventory"])
    assert "maroon" in http_get(site["port"], "journal.test", "/static/journal/print.css")[1]


def test_a_requirement_added_in_an_included_file_is_installed(site):
    (site["journal"] / "requirements/base.txt").write_text(
        (site["journal"] / "requirements/base.txt").read_text() + "six==1.17.0\n")
    dry = pyinfra(site["inventory"], "--dry", "--diff", json_results=False)
    assert "+ six==1.17.0" in dry.output, dry.output[-3000:]
    assert "journal: virtualenv" in dry.output
    pyinfra(site["inventory"])
    assert sh(site["container"], "/webapps/journal/venv/bin/python -c 'import six; print(six.__version__)'") == "1.17.0"


def test_a_broken_release_is_refused_in_seconds_with_its_traceback(site):
    views = site["journal"] / "journal/views.py"
    working = views.read_text()
    views.write_text(working.replace("    return render(", "    raise RuntimeError('the journal is broken')\n"
                                                         "    return render("))
    started = time.monotonic()
    run = pyinfra(site["inventory"], check=False)
    elapsed = time.monotonic() - started
    views.write_text(working)
    assert run.returncode != 0
    assert "RuntimeError: the journal is broken" in run.output, run.output[-4000:]
    assert "journal is refused" in run.output
    # A few tries, not the candidate check's whole timeout (60 s).
    assert elapsed < 45, elapsed
    status, body = http_get(site["port"], "journal.test")
    assert status == 200 and "production" in body


def test_a_redirect_to_a_broken_page_fails_the_deploy(site):
    views = site["ledger"] / "src/ledger/views.py"
    working = views.read_text()
    views.write_text(working.replace("def login(request):\n", "def login(request):\n"
                                                             "    raise ValueError('no login today')\n"))
    run = pyinfra(site["inventory"], check=False)
    views.write_text(working)
    assert run.returncode != 0
    assert "ValueError: no login today" in run.output, run.output[-4000:]
    assert "ledger.test/login/" in run.output


def test_a_working_release_deploys_again_and_a_second_run_changes_nothing(site):
    pyinfra(site["inventory"])
    assert pyinfra(site["inventory"]).changed() == []
    status, body = http_get(site["port"], "ledger.test", "/login/")
    assert status == 200 and "<p id='seeds'>" in body
