"""TLS for real: an ACME certificate from pebble (Let's Encrypt's test server, in its own container
on a network the test creates, where docker's DNS points the app's domains at the target),
provided and self-signed certificates, graded by gixy-ng and testssl.sh."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests import targets
from tests.helpers import PEBBLE_DIRECTORY, copy_example, master_pid, pyinfra, sh, start_pebble, write_inventory

pytestmark = pytest.mark.e2e

def curl(container: str, domain: str, *args: str, path: str = "/") -> str:
    """curl inside the target, to its own Nginx on 443 with the domain as SNI (the chain is
    checked by testssl.sh below, against pebble's root)."""
    return sh(container, f"curl -sSk --max-time 10 --resolve {domain}:443:127.0.0.1 {' '.join(args)} "
                         f"https://{domain}{path}")


def certificate(container: str, domain: str) -> str:
    """Subject, issuer, serial and names of the certificate the target serves for `domain`."""
    return sh(container, f"openssl s_client -connect 127.0.0.1:443 -servername {domain} </dev/null 2>/dev/null "
                         "| openssl x509 -noout -subject -issuer -serial -ext subjectAltName")


def make_certificate(container: str, workdir, name: str) -> tuple[str, str]:
    """A certificate and key for goodbye.test, made in the target, as files on this machine."""
    sh(container, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 "
                  f"-subj /CN=goodbye.test -addext subjectAltName=DNS:goodbye.test -keyout /tmp/{name}.key "
                  f"-out /tmp/{name}.crt 2>/dev/null")
    paths = []
    for suffix in ("crt", "key"):
        path = workdir / f"{name}.{suffix}"
        path.write_text(sh(container, f"cat /tmp/{name}.{suffix}; rm /tmp/{name}.{suffix}") + "\n")
        paths.append(str(path))
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def site(network_factory, tmp_path_factory):
    hosts = network_factory("site", "pebble", published=("site",),
                            aliases={"site": ("shop.test", "www.shop.test"), "pebble": ("pebble",)})
    container, pebble = hosts["site"], hosts["pebble"]
    start_pebble(pebble, container)

    workdir = tmp_path_factory.mktemp("tls")
    cert, key = make_certificate(container, workdir, "first")
    apps = {
        "shop": {"name": "shop", "domains": ["shop.test", "www.shop.test"],
                 "source": str(copy_example("hello", workdir)),
                 "tls": {"mode": "acme", "email": "ops@shop.test", "directory": PEBBLE_DIRECTORY}},
        "goodbye": {"name": "goodbye", "domains": ["goodbye.test"],
                    "source": str(copy_example("goodbye", workdir)),
                    "tls": {"mode": "provided", "cert": cert, "key": key}},
    }

    def deploy(check: bool = True, **changes: dict):
        entries = [{**entry, **changes.get(name, {})} for name, entry in apps.items()]
        return pyinfra(write_inventory(workdir / "inventory.py", container, entries), check=check)

    first = deploy()
    return {"container": container, "pebble": pebble, "deploy": deploy, "first": first, "workdir": workdir,
            "apps": apps, "port": targets.published_port(container, 80)}


def test_http_redirects_to_https_except_acme_challenges(site):
    container = site["container"]
    head = sh(container, "curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: shop.test' "
                         "http://127.0.0.1/some/page?x=1")
    assert head == "301 https://shop.test/some/page?x=1"
    challenge = sh(container, "curl -sS -o /dev/null -w '%{http_code}' -H 'Host: shop.test' "
                              "http://127.0.0.1/.well-known/acme-challenge/missing")
    assert challenge == "404"


def test_https_answers_with_hsts_over_http2(site):
    container = site["container"]
    headers = curl(container, "shop.test", "--http2", "-D -", "-o /dev/null")
    assert headers.startswith("HTTP/2 200")
    assert headers.lower().count("strict-transport-security") == 1
    assert "strict-transport-security: max-age=63072000" in headers.lower()
    assert "Hello from djangohost" in curl(container, "www.shop.test")
    assert "Goodbye from djangohost" in curl(container, "goodbye.test")
    # Names no app serves get no certificate at all.
    refused = sh(container, "curl -sSk --resolve nobody.test:443:127.0.0.1 https://nobody.test/ 2>&1", check=False)
    assert "unrecognized name" in refused


def test_acme_certificate_from_pebble_covers_every_domain(site):
    served = certificate(site["container"], "www.shop.test")
    assert "Pebble Intermediate CA" in served
    assert "DNS:shop.test" in served and "DNS:www.shop.test" in served


def test_keys_are_root_only(site):
    container = site["container"]
    for app in ("shop", "goodbye"):
        assert sh(container, f"stat -L -c '%U %G %a' /etc/djangohost/tls/{app}/privkey.pem") == "root root 600"
        assert sh(container, f"stat -c '%a' /etc/djangohost/tls/{app}") == "700"
    assert "BEGIN PRIVATE KEY" not in site["first"].output


def test_second_run_changes_nothing(site):
    assert site["deploy"]().changed() == []


def test_django_knows_the_request_was_secure(site):
    container = site["container"]
    login = curl(container, "shop.test", "-D -", "-c /tmp/jar", path="/admin/login/")
    assert "csrftoken=" in login and "; Secure" in login
    token = sh(container, "awk '$6 == \"csrftoken\" {print $7}' /tmp/jar")
    # Django checks the Origin against https://shop.test: it would refuse this if it saw plain http.
    answer = curl(container, "shop.test", "-o /dev/null -w '%{http_code}'", "-b /tmp/jar",
                  "-H 'Origin: https://shop.test'", f"-d 'csrfmiddlewaretoken={token}&username=x&password=y'",
                  path="/admin/login/")
    assert answer == "200"  # the form again, "please enter a correct username": not 403
    check = sh(container, "/webapps/shop/bin/manage check --deploy 2>&1", check=False)
    # Left to the project: HSTS for subdomains and preloading are the domain owner's decisions.
    warnings = {w for w in ("W001", "W002", "W004", "W008", "W009", "W012", "W016", "W018", "W020")
                if f"security.{w}" in check}
    assert warnings == set(), check


def test_changing_a_certificate_reloads_nginx_only(site):
    container = site["container"]
    pids = {app: master_pid(container, app) for app in ("shop", "goodbye")}
    nginx = sh(container, "cat /run/nginx.pid")
    cert, key = make_certificate(container, site["workdir"], "second")
    run = site["deploy"](goodbye={"tls": {"mode": "provided", "cert": cert, "key": key}})
    # The health gates check the apps behind the reloaded Nginx; they restart nothing.
    assert sorted(name.split(" | ")[-1] for name in run.changed() if "health gate" not in name) == [
        "Nginx reload", "goodbye: TLS certificate", "goodbye: TLS key", "goodbye: history",
        "goodbye: nginx site checked and enabled"]
    assert {app: master_pid(container, app) for app in pids} == pids
    assert sh(container, "cat /run/nginx.pid") == nginx
    assert sh(container, "openssl x509 -noout -serial -in /etc/djangohost/tls/goodbye/fullchain.pem") in \
        certificate(container, "goodbye.test")


def test_a_certificate_nginx_refuses_fails_its_app_only(site):
    """goodbye is given a key that is not its certificate's: its new site and files are refused
    (they never reach what Nginx loads), and shop's change still goes live with the reload."""
    container = site["container"]
    live = "sha256sum /etc/djangohost/tls/goodbye/*.pem /etc/nginx/sites-available/goodbye"
    before = sh(container, live)
    cert, _ = make_certificate(container, site["workdir"], "third")
    _, other_key = make_certificate(container, site["workdir"], "fourth")
    shop_tls = {**site["apps"]["shop"]["tls"], "hsts_max_age": 600}
    run = site["deploy"](check=False, goodbye={"tls": {"mode": "provided", "cert": cert, "key": other_key}},
                         shop={"tls": shop_tls})
    assert run.returncode != 0
    assert "djangohost: app goodbye: its new Nginx site is refused; the one it had stays enabled" in run.output
    assert "key values mismatch" in run.output  # Nginx's own reason
    assert "strict-transport-security: max-age=600" in curl(container, "shop.test", "-D -", "-o /dev/null").lower()
    assert sh(container, live) == before
    assert "Goodbye from djangohost" in curl(container, "goodbye.test")
    sh(container, "nginx -t -q")  # nothing broken is left for the next reload or boot
    site["deploy"]()


def test_self_signed_is_made_once(site):
    container = site["container"]
    site["deploy"](goodbye={"tls": {"mode": "self-signed"}})
    served = certificate(container, "goodbye.test")
    assert "subject=CN = goodbye.test" in served and "issuer=CN = goodbye.test" in served
    assert site["deploy"](goodbye={"tls": {"mode": "self-signed"}}).changed() == []
    assert certificate(container, "goodbye.test") == served


def test_renewal_reloads_nginx_while_requests_succeed(site):
    container = site["container"]
    before = certificate(container, "shop.test")
    codes: list[str] = []
    stop = threading.Event()

    def requests() -> None:
        while not stop.is_set():
            codes.append(curl(container, "shop.test", "-o /dev/null -w '%{http_code}'"))

    loop = threading.Thread(target=requests)
    loop.start()
    try:
        sh(container, "certbot renew --force-renewal --no-random-sleep-on-renew --cert-name shop --quiet")
    finally:
        stop.set()
        loop.join()
    assert codes and set(codes) == {"200"}
    after = certificate(container, "shop.test")
    assert after != before and "Pebble Intermediate CA" in after


def test_gixy_finds_no_issue_in_the_whole_configuration(site):
    # gixy reads the whole configuration as Nginx loads it (nginx -T): nginx.conf (djangohost's
    # own, where Debian's enabled TLS 1.0 and 1.1 and set no worker_rlimit_nofile), every site.
    dump = sh(site["container"], "nginx -T 2>/dev/null")
    gixy = subprocess.run([Path(sys.executable).parent / "gixy", "-f", "json", "-"], input=dump,
                          capture_output=True, text=True)
    findings = json.loads(gixy.stdout)
    assert [f for f in findings if f["severity"] in ("MEDIUM", "HIGH")] == [], gixy.stdout
    assert "# managed by djangohost: /etc/nginx/nginx.conf" in dump


def test_testssl_reports_nothing_high_or_critical(site):
    container = site["container"]
    sh(container, "apt-get install -y -q testssl.sh >/dev/null && "
                  "curl -sSk https://pebble:15000/roots/0 > /tmp/pebble-root.pem")
    sh(container, "testssl --quiet --color 0 --warnings off --ip 127.0.0.1 --add-ca /tmp/pebble-root.pem "
                  "--jsonfile /tmp/testssl.json https://shop.test/ >/tmp/testssl.txt 2>&1", check=False)
    report = sh(container, "cat /tmp/testssl.txt")
    (site["workdir"] / "testssl.txt").write_text(report)  # for the README's summary
    findings = json.loads(sh(container, "cat /tmp/testssl.json"))
    assert [f["severity"] for f in findings if f["id"] == "cert_chain_of_trust"] == ["OK"], report
    bad = [(f["id"], f["severity"], f["finding"]) for f in findings if f["severity"] in ("HIGH", "CRITICAL")]
    assert bad == [], "\n".join(map(str, bad))


def test_purge_removes_the_certificate_and_the_other_app_keeps_serving(site):
    container = site["container"]
    site["deploy"](goodbye={"state": "absent", "purge": True})
    assert sh(container, "ls /etc/djangohost/tls") == "shop"
    assert "Hello from djangohost" in curl(container, "shop.test")
    assert "unrecognized name" in sh(
        container, "curl -sSk --resolve goodbye.test:443:127.0.0.1 https://goodbye.test/ 2>&1", check=False)
