"""Generated files: each headed 'managed by djangohost', each valid for the tool that reads it."""

from __future__ import annotations

import ast
import configparser
import gzip
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from deploys.components import broker, notify, schedule
from deploys.components.app import environment
from deploys.components.nginx import TLS_CIPHERS, TLS_PROTOCOLS, http2_directive, site_conf
from deploys.components.nginx.contract import NginxPart
from deploys.components.supervisor import program_file
from deploys.engine import safe
from deploys.engine.ops import mask_env
from deploys.engine.templates import TEMPLATES, render
from deploys.model import paths
from deploys.model.inventory import host_settings
from facts.state import State
from tests.helpers import EXAMPLES, load_apps


@pytest.fixture
def hello():
    (app,) = load_apps("web1", {"apps": [{
        "name": "hello", "domains": ["hello.test", "www.hello.test"],
        "source": str(EXAMPLES / "hello"), "env": {"GREETING": "it's \"quoted\" $HOME"},
    }]})
    return app


@pytest.fixture
def shop():
    (app,) = load_apps("web1", {"apps": [{
        "name": "shop", "domains": ["shop.test"], "source": str(EXAMPLES / "hello"), "broker": True,
        "processes": {"worker": "celery -A shop worker -Q 'a b;c'",
                      "beat": {"command": "celery -A shop beat", "stop_wait": 30}},
        "schedule": [{"name": "report", "command": "manage report --to '$(touch pwned); `id`' && true",
                      "cron": "*/15 * * * *"}],
    }]})
    return app


def test_every_template_says_it_is_managed():
    for template in TEMPLATES.rglob("*.j2"):
        head = "\n".join(template.read_text().splitlines()[:2])
        assert "managed by djangohost" in head, template


def test_nginx_site(hello):
    site = site_conf(hello, http2_on=False)
    assert "server unix:/webapps/hello/run/gunicorn.sock fail_timeout=0;" in site
    assert "server_name hello.test www.hello.test;" in site
    assert "upstream hello_gunicorn" in site and "proxy_pass http://hello_gunicorn;" in site
    for header in ("Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Real-IP"):
        assert f"proxy_set_header {header} " in site
    assert "proxy_redirect off;" in site
    assert "client_max_body_size 10m;" in site
    assert "alias /webapps/hello/static/;" in site and "alias /webapps/hello/media/;" in site
    assert "access_log /var/log/nginx/djangohost/hello/access.log;" in site


def test_supervisor_program(hello):
    conf = configparser.ConfigParser(inline_comment_prefixes=(";",))
    conf.read_string(program_file(hello, host_settings("web1", {})))
    assert conf.sections() == ["program:hello"]
    program = conf["program:hello"]
    assert program["command"] == "/webapps/hello/bin/gunicorn-start"
    assert program["user"] == "hello"
    for key in ("autostart", "autorestart", "stopasgroup", "killasgroup"):
        assert program[key] == "true"
    assert program["stdout_logfile"] == "/webapps/hello/logs/gunicorn.log"
    assert (program["stdout_logfile_maxbytes"], program["stdout_logfile_backups"]) == ("10MB", "5")


def test_processes_and_broker_are_programs_beside_gunicorn(shop):
    conf = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    conf.read_string(program_file(shop, host_settings("web1", {"djangohost_logs": {"size": "512k", "keep": 3}}),
                                  "supervisor/processes.conf.j2"))
    # In a file of their own: a change to one of them leaves Gunicorn's program as it is.
    assert conf.sections() == ["program:shop-worker", "program:shop-beat"]
    worker, beat = conf["program:shop-worker"], conf["program:shop-beat"]
    # Supervisor splits the command like a shell; the words reach celery as the inventory wrote them.
    assert shlex.split(worker["command"]) == ["/webapps/shop/bin/run", "celery", "-A", "shop", "worker",
                                              "-Q", "a b;c"]
    assert (worker["user"], worker["stopasgroup"], worker["killasgroup"]) == ("shop", "false", "true")
    assert (worker["stopwaitsecs"], beat["stopwaitsecs"]) == ("600", "30")
    assert (beat["stdout_logfile"], beat["stdout_logfile_maxbytes"]) == ("/webapps/shop/logs/beat.log", "512KB")
    # The broker's program is a file of its own, started before the app's release is checked.
    conf = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    conf.read_string(broker.program(shop, host_settings("web1", {})))
    assert conf.sections() == ["program:shop-redis"]
    assert conf["program:shop-redis"]["command"] == "/usr/bin/redis-server /webapps/shop/conf/redis.conf"
    assert conf["program:shop-redis"]["user"] == "shop"


def test_redis_listens_on_its_apps_socket_only(shop):
    conf = dict(line.split(" ", 1) for line in broker.config(shop).splitlines()
                if line and not line.startswith("#"))
    assert (conf["port"], conf["unixsocket"], conf["unixsocketperm"]) == ("0", "/webapps/shop/run/redis.sock", "700")
    assert (conf["maxmemory"], conf["maxmemory-policy"]) == ("64mb", "noeviction")


def test_a_jobs_command_reaches_it_word_for_word_through_roots_cron_line(shop, tmp_path):
    cron = render("schedule/jobs.cron.j2", app=shop, jobs=schedule.jobs(shop), job=str(tmp_path / "job"))
    (tmp_path / "job").write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    (tmp_path / "job").chmod(0o755)
    line = [line for line in cron.splitlines() if "report" in line][0]
    assert line.startswith("*/15 * * * * root ")
    # cron hands what follows the user to sh -c, as root: it must run nothing but bin/job.
    words = subprocess.run(["sh", "-c", line.split(" root ", 1)[1]], capture_output=True, text=True,
                           check=True, cwd=tmp_path).stdout.splitlines()
    assert words == ["report", "manage", "report", "--to", "$(touch pwned); `id`", "&&", "true"]
    assert not (tmp_path / "pwned").exists()


def test_python_files_are_valid_python(hello):
    gunicorn = render("app/gunicorn.conf.py.j2", app=hello, current=paths.current(hello), workers=5,
                      reloaded=paths.gunicorn_reloaded(hello), conf=paths.conf(hello))
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(gunicorn).body
              if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
              and isinstance(node.targets[0], ast.Name)}
    # A log line lost to a reentrant write in the SIGCHLD handler must not kill the master.
    assert "\nlogging.raiseExceptions = False\n" in gunicorn
    assert 'chdir = os.path.join(os.environ.get("DJANGOHOST_RELEASE", "/webapps/hello/current"), "")' in gunicorn
    assert values["bind"] == "unix:/webapps/hello/run/gunicorn.sock"
    assert values["wsgi_app"] == "hello.wsgi:application"
    assert values["workers"] == 5
    settings = render("app/djangohost_settings.py.j2", app=hello, broker=None)
    ast.parse(settings)
    assert "from hello.settings import *" in settings
    assert "ALLOWED_HOSTS = [\"hello.test\", \"www.hello.test\"]" in settings


def test_env_file_survives_the_shell(hello, tmp_path):
    env = tmp_path / "env"
    env.write_text(render("app/env.j2", app=hello, env=environment(hello)))
    out = subprocess.run(["sh", "-c", f"set -a; . {env}; set +a; env"],
                         capture_output=True, text=True, check=True).stdout
    assert "GREETING=it's \"quoted\" $HOME\n" in out
    assert "DJANGO_SETTINGS_MODULE=djangohost_settings\n" in out
    assert "PYTHONPATH=/webapps/hello/conf\n" in out
    assert "DATABASE_URL=postgres://hello@/hello\n" in out


def test_shell_scripts_parse(hello, tmp_path):
    for template in ("app/gunicorn-start.j2", "app/manage.j2", "app/run.j2", "schedule/job.j2",
                     "app/compress-static.j2", "app/gunicorn-reload.j2"):
        script = tmp_path / "script"
        script.write_text(render(template, app=hello, conf=paths.conf(hello), current=paths.current(hello),
                                 venv=paths.venv(hello), bin=hello.path("bin"), run=paths.run_script(hello),
                                 logs=hello.path("logs"), records=paths.job_records(hello), confine="",
                                 static=hello.path("static"), reloaded=paths.gunicorn_reloaded(hello), wait=90,
                                 run_dir=paths.RUN_DIR, notify=notify.TOOL))
        subprocess.run(["sh", "-n", str(script)], check=True)


# Every shell program djangohost ships, and the variables each is rendered with here.
SHELL_PROGRAMS = ("app/gunicorn-start.j2", "app/manage.j2", "app/run.j2", "schedule/job.j2", "app/compress-static.j2",
                  "app/gunicorn-reload.j2", "engine/djangohost-background.j2", "nginx/djangohost-nginx-check.j2",
                  "balancer/djangohost-lb-member.j2", "dbserver/djangohost-db-password.j2",
                  "tls/djangohost-nginx-reload.j2", "engine/take-lock.sh.j2", "removal/end-user.sh.j2",
                  "app/djangohost-build.j2", "health/prune.sh.j2")


def shell_context(app) -> dict:
    return dict(app=app, conf=paths.conf(app), current=paths.current(app), venv=paths.venv(app), bin=app.path("bin"),
                run=paths.run_script(app), logs=app.path("logs"), records=paths.job_records(app), confine="",
                static=app.path("static"), reloaded=paths.gunicorn_reloaded(app), wait=90, run_dir=paths.RUN_DIR,
                dir=paths.BACKGROUND, enabled=paths.NGINX_ENABLED, nginx_conf=paths.NGINX_CONF,
                site=paths.nginx_site(app), reload="nginx -s reload", lock=f"{paths.RUN_DIR}/lock", token="t",
                holder="h", stale="s", safe=paths.SAFE_TOOL, home=app.home, build=paths.BUILD, uv=paths.UV_BIN,
                dependencies=paths.DEPENDENCIES, marker=paths.VENV_COMPLETE, keep=5, notify=notify.TOOL)


@pytest.mark.parametrize("template", SHELL_PROGRAMS)
def test_shell_programs_pass_shellcheck(hello, tmp_path, template):
    script = tmp_path / "script"
    text = render(template, **shell_context(hello))
    script.write_text(text if text.startswith("#!") else f"#!/bin/sh\n{text}")
    # SC1091: the environment file sourced is the host's; SC2016: single quotes meant for an inner sh.
    done = subprocess.run(["shellcheck", "--shell=sh", "--exclude=SC1091,SC2016", str(script)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("program", sorted(str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.sh")))
def test_shell_programs_shipped_as_they_are_pass_shellcheck(program):
    done = subprocess.run(["shellcheck", "--shell=sh", str(TEMPLATES / program)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_scripts_root_starts_as_an_app_hold_nothing_of_roots_terminal(hello):
    """Root may start bin/manage, bin/run and bin/compress-static from its terminal: each drops to
    the app in a terminal of its own (runuser --pty) or in a session without one (setsid), the
    same way (tests/e2e/test_processes.py types into root's terminal through bin/run)."""
    drop = render("app/as-app.sh.j2", app=hello)
    assert "runuser --pty -u hello" in drop and "setsid --wait runuser -u hello" in drop
    for template in ("app/manage.j2", "app/run.j2", "app/compress-static.j2"):
        assert drop in render(template, **shell_context(hello)), template
    # A job runs in a session of its own, without root's standard input, whoever starts it.
    job = render("schedule/job.j2", **shell_context(hello))
    assert "exec </dev/null >>" in job and "setsid --wait /webapps/hello/bin/run" in job


def test_static_files_get_compressed_copies_once_and_anew_when_they_change(hello):
    """compress-static, run for real on a static directory: a copy for each text file, made again
    only for the file that changed. (As root it would become the app's user: here it runs as
    `nobody` when the test is root, in a directory anyone may enter.)"""
    with tempfile.TemporaryDirectory() as tmp:
        static = Path(tmp) / "static"
        (static / "app").mkdir(parents=True)
        files = {"app/site.css": "h1 { color: red }\n" * 200, "app/app.js": "let x = 1;\n" * 300, "app/logo.png": "PNG"}
        for name, text in files.items():
            (static / name).write_text(text)
        script = Path(tmp) / "compress-static"
        script.write_text(render("app/compress-static.j2", app=hello, static=str(static)))
        subprocess.run(["chmod", "-R", "a+rwX", tmp], check=True)
        run = ["runuser", "-u", "nobody", "--", "sh", str(script)] if os.getuid() == 0 else ["sh", str(script)]
        suffixes = ["gz", *(["br"] if shutil.which("brotli") else [])]

        subprocess.run(run, check=True)
        copies = {path.relative_to(static).as_posix() for path in static.rglob("*.*") if path.suffix[1:] in suffixes}
        assert copies == {f"app/{name}.{suffix}" for name in ("site.css", "app.js") for suffix in suffixes}
        assert gzip.decompress((static / "app/site.css.gz").read_bytes()).decode() == files["app/site.css"]

        made = {copy: (static / copy).stat().st_ctime_ns for copy in copies}
        time.sleep(0.05)
        (static / "app/app.js").write_text("let y = 2;\n" * 300)
        subprocess.run(run, check=True)
        remade = {copy for copy in copies if (static / copy).stat().st_ctime_ns != made[copy]}
        assert remade == {f"app/app.js.{suffix}" for suffix in suffixes}
        assert gzip.decompress((static / "app/app.js.gz").read_bytes()).decode() == "let y = 2;\n" * 300


def test_gunicorn_start_runs_with_the_live_or_the_staged_configuration(hello, tmp_path):
    """The candidate check runs the start script with DJANGOHOST_CONF=conf/next: the new release
    then reads the staged environment, settings and Gunicorn config, not the live ones."""
    python = tmp_path / "venv" / "bin" / "python"  # prints what Gunicorn would be started with
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$PYTHONPATH|$GREETING|$*|$(pwd)"\n')
    python.chmod(0o755)
    for conf in ("live", "next"):
        (tmp_path / conf).mkdir()
        (tmp_path / conf / "env").write_text(f"GREETING={conf}\nPYTHONPATH=/elsewhere\n")
    (tmp_path / "release").mkdir()
    script = tmp_path / "gunicorn-start"
    script.write_text(render("app/gunicorn-start.j2", app=hello, conf=str(tmp_path / "live"),
                             current=str(tmp_path / "release"), venv=str(tmp_path / "venv")))

    def started(**env: str) -> str:
        return subprocess.run(["sh", str(script), "--workers", "1"], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    live, next_ = tmp_path / "live", tmp_path / "next"
    release = tmp_path / "release"
    assert started() == f"{live}|live|-m gunicorn --config {live}/gunicorn.conf.py --workers 1|{release}"
    assert started(DJANGOHOST_CONF=str(next_)) == \
        f"{next_}|next|-m gunicorn --config {next_}/gunicorn.conf.py --workers 1|{release}"


def test_secret_values_are_masked_by_name_whatever_their_quoting(hello):
    content = render("app/env.j2", app=hello, env={"TOKEN": "it's a \"secret\"", "PLAIN": "shown",
                                                  "SECRET_KEY": "k" * 50})
    masked = mask_env(content, ["TOKEN"])
    assert "TOKEN=********\n" in masked and "SECRET_KEY=********\n" in masked
    assert "PLAIN=shown\n" in masked and "secret" not in masked and "kkk" not in masked


def test_gunicorn_reads_the_environment_file_as_the_shell_does(hello, tmp_path):
    env = tmp_path / "env"
    env.write_text(render("app/env.j2", app=hello, env={"GREETING": "it's \"quoted\" $HOME", "N": "1"}))
    config = render("app/gunicorn.conf.py.j2", app=hello, current=paths.current(hello), workers=1,
                    reloaded=paths.gunicorn_reloaded(hello),
                    conf=str(tmp_path))
    namespace: dict = {}
    exec(config, namespace)
    assert namespace["raw_env"] == ["GREETING=it's \"quoted\" $HOME", "N=1"]


@pytest.fixture
def secure_hello():
    (app,) = load_apps("web1", {"apps": [{
        "name": "hello", "domains": ["hello.test", "www.hello.test"],
        "source": str(EXAMPLES / "hello"), "tls": {"mode": "self-signed", "hsts_max_age": 600},
    }]})
    return app


@pytest.mark.parametrize(("version", "debian", "directive"), [
    ((1, 22, 1), 12, False), ((1, 26, 3), 13, True), ((1, 25, 1), 0, True), ((), 12, False), ((), 13, True),
])
def test_http2_is_switched_on_the_way_the_nginx_version_wants(version, debian, directive):
    assert http2_directive(State(nginx_version=version, debian_version=debian)) is directive


def test_nginx_site_with_tls_on_new_and_old_nginx(secure_hello):
    new = site_conf(secure_hello, http2_on=True)
    assert "listen 443 ssl;" in new and "\n    http2 on;\n" in new and "ssl http2" not in new
    assert "http2 on;" not in site_conf(secure_hello, http2_on=False)


def test_nginx_site_with_tls(secure_hello):
    site = site_conf(secure_hello, http2_on=False)
    plain, secure = site.split("listen 443 ssl http2;")
    assert "return 301 https://$host$request_uri;" in plain and f"root {paths.ACME_WEBROOT};" in plain
    assert "proxy_pass" not in plain
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in secure
    assert 'add_header Strict-Transport-Security "max-age=600" always;' in secure
    assert "ssl_certificate_key /etc/djangohost/tls/hello/privkey.pem;" in secure


def test_django_settings_with_tls(secure_hello):
    settings = render("app/djangohost_settings.py.j2", app=secure_hello, broker=None)
    ast.parse(settings)
    assert 'SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")' in settings
    assert 'CSRF_TRUSTED_ORIGINS = ["https://hello.test", "https://www.hello.test"]' in settings
    assert "SECURE_HSTS_SECONDS = 600" in settings


def test_django_settings_for_mariadb_use_the_socket_strict_mode_and_utf8mb4():
    (shop,) = load_apps("web1", {"apps": [{"name": "shop", "domains": ["shop.test"], "source": str(EXAMPLES / "hello"),
                                           "database": {"engine": "mariadb"}}]})
    settings = render("app/djangohost_settings.py.j2", app=shop, broker=broker.maxmemory(shop))
    ast.parse(settings)
    assert '"ENGINE": "django.db.backends.mysql"' in settings and "pymysql.install_as_MySQLdb()" in settings
    assert "STRICT_TRANS_TABLES" in settings and '"charset": "utf8mb4"' in settings
    assert "django.contrib.postgres" not in settings
    assert environment(shop)["DATABASE_URL"] == "mysql://shop@/shop?unix_socket=/run/mysqld/mysqld.sock"


def background_tool(tmp_path: Path, cores: int) -> tuple[list[str], dict[str, str], Path]:
    """djangohost-background, rendered into tmp_path, on a host of `cores` cores, with djangohost-safe."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nproc").write_text(f"#!/bin/sh\necho {cores}\n")
    (bin_dir / "nproc").chmod(0o755)
    (bin_dir / "djangohost-safe").write_text(f"#!/bin/sh\nexec {sys.executable} {safe.SOURCE} \"$@\"\n")
    (bin_dir / "djangohost-safe").chmod(0o755)
    script = tmp_path / "djangohost-background"
    steps = tmp_path / "state" / "background"
    script.write_text(render("engine/djangohost-background.j2", dir=steps, safe_tool=bin_dir / "djangohost-safe",
                             lock=tmp_path / "lock"))
    return ["sh", str(script)], {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, steps


def test_a_steps_output_reaches_the_terminal_escaped(tmp_path):
    """What a build or an app's check prints (a hostile setup.py, a traceback of the app's) goes to
    the operator's terminal with its escape sequences escaped, whether the step failed or not."""
    tool, env, _ = background_tool(tmp_path, cores=1)
    hostile = "printf 'title\\033]0;pwned\\007 clear\\033[2J\\n'"
    for name, code in (("ok", 0), ("failed", 3)):
        subprocess.run([*tool, "start", name, "sh", "-c", f"{hostile}; exit {code}"], env=env, check=True, timeout=5)
        waited = subprocess.run([*tool, "wait", name], env=env, capture_output=True, text=True, timeout=10)
        shown = waited.stdout + waited.stderr
        assert "\x1b" not in shown and "title\\x1b]0;pwned\\x07 clear\\x1b[2J" in shown, shown


def test_background_steps_run_side_by_side_and_are_waited_for(tmp_path):
    """djangohost-background, run for real: `start` returns while its step runs, two steps run side
    by side on two cores, `wait` returns once a step ended, with its output; a step makes its files
    with the caller's umask, the tool's own files are root's alone."""
    tool, env, steps = background_tool(tmp_path, cores=2)
    started = time.monotonic()
    for name in ("hello.virtualenv", "goodbye.virtualenv"):
        subprocess.run([*tool, "start", "--one-per-core", name, "sh", "-c", 'sleep 1; echo "$0 built, umask $(umask)"',
                        name], env=env, check=True, timeout=5, preexec_fn=lambda: os.umask(0o022))
    assert time.monotonic() - started < 0.5
    for name in ("hello.virtualenv", "goodbye.virtualenv"):
        waited = subprocess.run([*tool, "wait", name], env=env, capture_output=True, text=True, timeout=10)
        assert waited.returncode == 0, waited.stderr
        assert waited.stdout == f"{name} built, umask 0022\n"
    assert 1 <= time.monotonic() - started < 1.8  # side by side, not one after the other
    assert steps.stat().st_mode & 0o777 == 0o700
    assert all(path.stat().st_mode & 0o077 == 0 for path in steps.iterdir())


def test_background_steps_wait_for_a_core_of_their_own(tmp_path):
    """On one core, the second step starts once the first ended; a server the first left running
    holds no core."""
    tool, env, _ = background_tool(tmp_path, cores=1)
    marks = tmp_path / "marks"
    step = f'echo "$0 start $(date +%s.%N)" >> {marks}; sleep 0.5; echo "$0 end $(date +%s.%N)" >> {marks}'
    subprocess.run([*tool, "start", "--one-per-core", "first", "sh", "-c", f"sleep 30 & {step}", "first"],
                   env=env, check=True, timeout=15)
    subprocess.run([*tool, "start", "--one-per-core", "second", "sh", "-c", step, "second"], env=env, check=True,
                   timeout=15)
    for name in ("first", "second"):
        subprocess.run([*tool, "wait", name], env=env, check=True, timeout=25)
    times = {" ".join(line.split()[:2]): float(line.split()[2]) for line in marks.read_text().splitlines()}
    assert times["second start"] >= times["first end"]
    # Not after the first's `sleep 30` (with room for a machine busy with other tests).
    assert times["second end"] - times["first start"] < 20


def test_a_background_step_after_another_starts_once_it_ended_however_it_ended(tmp_path):
    """--after: the second install starts when the first ended, failed as it may (they share
    dpkg's lock); `start` returns at once."""
    tool, env, _ = background_tool(tmp_path, cores=2)
    marks = tmp_path / "marks"
    started = time.monotonic()
    subprocess.run([*tool, "start", "first", "sh", "-c", f"sleep 0.5; date +%s.%N > {marks}.first; exit 100"],
                   env=env, check=True, timeout=5)
    subprocess.run([*tool, "start", "--after", "first", "second", "sh", "-c", f"date +%s.%N > {marks}.second"],
                   env=env, check=True, timeout=5)
    assert time.monotonic() - started < 0.4
    subprocess.run([*tool, "wait", "second"], env=env, check=True, timeout=10)
    assert float(Path(f"{marks}.second").read_text()) >= float(Path(f"{marks}.first").read_text())
    assert subprocess.run([*tool, "wait", "first"], env=env, capture_output=True, timeout=5).returncode == 1


def test_what_a_step_leaves_running_cannot_write_into_the_next_runs_output(tmp_path):
    """A build that leaves a process behind (a hostile setup.py, say) keeps its step's output open:
    the next run of the step writes a new file, which that process cannot reach."""
    tool, env, steps = background_tool(tmp_path, cores=2)
    leftover = "sh -c 'sleep 0.6; echo djangohost: forged' & echo first run"
    subprocess.run([*tool, "start", "hello.virtualenv", "sh", "-c", leftover], env=env, check=True, timeout=5)
    subprocess.run([*tool, "wait", "hello.virtualenv"], env=env, check=True, timeout=5)
    subprocess.run([*tool, "start", "hello.virtualenv", "sh", "-c", "sleep 1; echo second run"], env=env, check=True,
                   timeout=5)
    second = subprocess.run([*tool, "wait", "hello.virtualenv"], env=env, capture_output=True, text=True, timeout=5)
    assert second.stdout == "second run\n"
    assert "forged" not in (steps / "hello.virtualenv.log").read_text()


def test_a_failed_or_killed_background_step_fails_its_wait(tmp_path):
    """`wait` fails with the step's output and status, or says the step ended without one; a name
    that is not one is refused."""
    tool, env, steps = background_tool(tmp_path, cores=2)
    subprocess.run([*tool, "start", "packages", "sh", "-c", "echo E: Unable to locate package nope; exit 100"],
                   env=env, check=True, timeout=5)
    failed = subprocess.run([*tool, "wait", "packages"], env=env, capture_output=True, text=True, timeout=10)
    assert failed.returncode == 1
    assert "E: Unable to locate package nope" in failed.stderr
    assert "djangohost: packages failed (its status 100)" in failed.stderr

    subprocess.run([*tool, "start", "killed", "sleep", "30"], env=env, check=True, timeout=5)
    time.sleep(0.2)
    os.killpg(int((steps / "killed.pid").read_text()), 9)
    killed = subprocess.run([*tool, "wait", "killed"], env=env, capture_output=True, text=True, timeout=10)
    assert killed.returncode == 1
    assert "djangohost: killed ended without an exit status" in killed.stderr

    # Its number now another process's (this test's), or a zombie's no one reaped: neither hangs.
    zombie = subprocess.Popen(["true"])
    time.sleep(0.2)
    for name, pid in (("reused", os.getpid()), ("zombie", zombie.pid)):
        (steps / f"{name}.pid").write_text(f"{pid}\n")
        ended = subprocess.run([*tool, "wait", name], env=env, capture_output=True, text=True, timeout=5)
        assert ended.returncode == 1 and f"djangohost: {name} ended without an exit status" in ended.stderr
        subprocess.run([*tool, "start", name, "true"], env=env, check=True, timeout=5)
        subprocess.run([*tool, "wait", name], env=env, check=True, timeout=5)
    zombie.wait()

    bad = subprocess.run([*tool, "start", "../etc", "true"], env=env, capture_output=True, text=True, timeout=5)
    assert bad.returncode == 2 and not (steps.parent / "etc.pid").exists()


def test_an_apps_own_headers_are_on_every_answer_of_its_site():
    (app,) = load_apps("web1", {"apps": [{"name": "hello", "domains": ["hello.test"], "source": str(EXAMPLES / "hello"),
                                          "headers": {"X-Frame-Options": "DENY", "Permissions-Policy": "camera=()"}}]})
    site = site_conf(app, http2_on=False)
    # In the server and again in each block with headers of its own (add_header is not inherited
    # there): static and media files, the maintenance page.
    assert site.count('add_header X-Frame-Options "DENY" always;') == 4
    assert site.count('add_header Permissions-Policy "camera=()" always;') == 4
    assert "proxy_hide_header X-Frame-Options;" in site  # the app's own one is not sent beside it


def test_pruning_keeps_the_live_release_the_newest_checked_ones_and_their_virtualenvs(tmp_path):
    from deploys.components.health import prune

    (app,) = load_apps("web1", {"djangohost_root": str(tmp_path), "apps": [
        {"name": "hello", "domains": ["hello.test"], "source": str(EXAMPLES / "hello")}]})
    home = Path(app.home)
    checked = {f"2026120{day}T000000-aaaa": f"venv{day % 3}" for day in range(1, 8)}
    for release, venv in checked.items():
        (home / "releases" / release).mkdir(parents=True)
        (home / "releases" / release / paths.RELEASE_VENV).write_text(venv + "\n")
    (home / "releases" / "20261201T120000-refused").mkdir()  # refused by its check: no marker
    (home / "releases" / "20261208T000000-new.djangohost-new").mkdir()  # being made
    for venv in ("venv0", "venv1", "venv2", "unused", "being.made"):
        (home / "venvs" / venv).mkdir(parents=True)
    (home / "current").symlink_to("releases/20261201T000000-aaaa")  # rolled back to the oldest
    (home / "venv").symlink_to("venvs/venv1")
    subprocess.run(["sh", "-c", f"(\n{prune(app, 3)})"], check=True)
    assert sorted(path.name for path in (home / "releases").iterdir()) == [
        "20261201T000000-aaaa", "20261205T000000-aaaa", "20261206T000000-aaaa", "20261207T000000-aaaa",
        "20261208T000000-new.djangohost-new"]
    # venv1: the live one and 20261207's; venv2: 20261205's; venv0: 20261206's.
    assert sorted(path.name for path in (home / "venvs").iterdir()) == ["being.made", "venv0", "venv1", "venv2"]


def test_a_login_and_a_canonical_domain_are_written_for_nginx():
    (hello,) = load_apps("web1", {"apps": [{
        "name": "hello", "domains": ["hello.test", "www.hello.test"], "source": str(EXAMPLES / "hello"),
        "canonical": True, "basic_auth": {"users": {"ann": "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/"},
                                          "paths": ["/admin/", "/a.b/"]}}]})
    site = site_conf(hello, http2_on=False)
    assert '"~^0:/admin/" "Restricted";' in site and '"~^0:/a\\.b/" "Restricted";' in site
    assert "default off;" in site and "auth_basic $djangohost_auth_hello;" in site
    assert "if ($host != hello.test) {\n        return 301 http://hello.test$request_uri;" in site


@pytest.fixture
def chat():
    (app,) = load_apps("web1", {"apps": [{
        "name": "chat", "domains": ["chat.test"], "source": str(EXAMPLES / "chat"), "server": "asgi",
        "broker": True, "database": False, "tls": {"mode": "self-signed"},
    }]})
    return app


def proxied_locations(site: str) -> list[str]:
    """The `location /` blocks that proxy (not the redirects to https)."""
    blocks = [part.split("}", 1)[0] for part in site.split("location / {")[1:]]
    return [block for block in blocks if "proxy_pass" in block]


def proxied_location(site: str) -> str:
    (location,) = proxied_locations(site)
    return location


def test_an_asgi_apps_site_passes_websockets_and_streams_on(chat, hello):
    location = proxied_location(site_conf(chat, http2_on=True))
    for line in ("proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
                 "proxy_set_header Connection $djangohost_connection_upgrade;", "proxy_buffering off;",
                 "proxy_read_timeout 3600s;", "proxy_pass http://chat_gunicorn;"):
        assert line in location, line
    # A WSGI app's site is as it was: Nginx's buffering and timeout.
    plain = proxied_location(site_conf(hello, http2_on=False))
    assert "Upgrade" not in plain and "proxy_buffering" not in plain and "proxy_read_timeout" not in plain


def test_the_connection_header_is_upgrade_for_a_handshake_only():
    conf = render("nginx/nginx.conf.j2", worker_connections=2048, tls_protocols=TLS_PROTOCOLS)
    assert "map $http_upgrade $djangohost_connection_upgrade {" in conf
    assert "default upgrade;" in conf and '"" "";' in conf


def test_an_asgi_app_runs_uvicorns_worker_and_its_channels_in_its_redis(chat, hello):
    config = render("app/gunicorn.conf.py.j2", app=chat, current=paths.current(chat), workers=3,
                    conf=paths.conf(chat), reloaded=paths.gunicorn_reloaded(chat))
    ast.parse(config)
    assert "wsgi_app = \"chat.asgi:application\"" in config
    assert "worker_class = \"uvicorn_worker.UvicornWorker\"" in config
    assert "worker_class" not in render("app/gunicorn.conf.py.j2", app=hello, current=paths.current(hello),
                                        workers=3, conf=paths.conf(hello), reloaded=paths.gunicorn_reloaded(hello))
    settings = render("app/djangohost_settings.py.j2", app=chat, broker=broker.maxmemory(chat),
                      broker_socket=broker.socket(chat))
    namespace: dict = {"INSTALLED_APPS": ["channels"]}
    # The layer's part, run over a project that installs channels.
    layer = settings.split('if "channels" in INSTALLED_APPS:  # noqa: F405\n', 1)[1].split("\n\n", 1)[0]
    exec("if True:\n" + layer, namespace)
    assert namespace["CHANNEL_LAYERS"]["default"] == {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "unix:///webapps/chat/run/redis.sock?db=2", "socket_timeout": 30}]}}
    ast.parse(settings)


def test_an_asgi_apps_reload_says_how_many_connections_its_old_workers_closed(chat, tmp_path):
    script = tmp_path / "reload"
    script.write_text(render("app/gunicorn-reload.j2", **shell_context(chat)))
    assert "ss -xHn state established src /webapps/chat/run/gunicorn.sock" in script.read_text()
    done = subprocess.run(["shellcheck", "--shell=sh", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def balanced_site(apps, certificates) -> str:
    from deploys.model.topology import Balanced

    return render("balancer/balancer.conf.j2", apps=[Balanced(app, ("10.0.0.2", "10.0.0.3")) for app in apps],
                  NginxPart=NginxPart, fail_timeout="10s", connect_timeout="2s", certificates=certificates,
                  acme_webroot=paths.ACME_WEBROOT, tls_protocols=TLS_PROTOCOLS, tls_ciphers=TLS_CIPHERS,
                  http2_on=False)


def test_the_load_balancer_passes_an_asgi_apps_websockets_and_keeps_the_others_alive(chat, hello):
    site = balanced_site([chat, hello], {"chat": ("/c.pem", "/k.pem")})
    chat_location, hello_location = proxied_locations(site)
    for line in ("proxy_set_header Upgrade $http_upgrade;",
                 "proxy_set_header Connection $djangohost_connection_upgrade;", "proxy_buffering off;",
                 "proxy_read_timeout 3600s;"):
        assert line in chat_location and line not in hello_location, line
    assert 'proxy_set_header Connection "";' in hello_location


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def nginx_accepts(tmp_path: Path, sites: str) -> None:
    """`nginx -t` of djangohost's nginx.conf with `sites` as its only sites, every path it writes in tmp_path."""
    conf = render("nginx/nginx.conf.j2", worker_connections=2048, tls_protocols=TLS_PROTOCOLS)
    conf = (conf.replace("/run/nginx.pid", str(tmp_path / "nginx.pid"))
            .replace("/var/log/nginx/", f"{tmp_path}/")
            .replace("include /etc/nginx/conf.d/*.conf;", "")
            .replace("/etc/nginx/sites-enabled/*", str(tmp_path / "sites.conf")))
    (tmp_path / "nginx.conf").write_text(conf)
    (tmp_path / "sites.conf").write_text(sites)
    done = subprocess.run([str(NGINX), "-t", "-p", "/usr/share/nginx", "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "[warn]" not in done.stderr, done.stderr


def certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=chat.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


@pytest.mark.skipif(NGINX is None or os.getuid() != 0, reason="nginx -t needs Nginx (scripts/setup) and root")
def test_nginx_accepts_an_asgi_apps_site_and_the_load_balancers(chat, hello, tmp_path):
    cert, key = certificate(tmp_path)
    sites = "".join(site_conf(app, http2_on=False).replace(paths.tls_cert(app), cert).replace(paths.tls_key(app), key)
                    .replace(paths.nginx_logs(app), str(tmp_path)) for app in (chat, hello))
    nginx_accepts(tmp_path, sites)
    nginx_accepts(tmp_path, balanced_site([chat, hello], {"chat": (cert, key)}))


@pytest.mark.skipif(NGINX is None or os.getuid() != 0, reason="nginx -t needs Nginx (scripts/setup) and root")
def test_nginx_accepts_a_site_with_every_control(tmp_path):
    (app,) = load_apps("web1", {"apps": [{
        "name": "hello", "domains": ["hello.test", "www.hello.test"], "source": str(EXAMPLES / "hello"),
        "canonical": True, "maintenance_allow": ["10.9.0.0/16", "2001:db8::/32"],
        "allow": {"addresses": ["192.0.2.0/24"], "paths": ["/staff/"]},
        "basic_auth": {"users": {"ann": "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/"}, "paths": ["/admin/"]}}]})
    site = site_conf(app, http2_on=False)
    assert '"~^00:/staff/" 1;' in site and "return 403;" in site and "return 503;" in site
    nginx_accepts(tmp_path, site.replace(paths.nginx_logs(app), str(tmp_path)))


def test_a_stopped_runs_waiting_step_starts_nothing(tmp_path):
    """A run killed while its `start` waited for a step of the same name leaves that start
    waiting on the host: once the step ends, it must not run the old run's step beside the new
    run's (which took the lock over), whose stamp it would overwrite."""
    tool, env, _ = background_tool(tmp_path, cores=2)
    marks, lock = tmp_path / "marks", tmp_path / "lock"
    lock.mkdir()
    (lock / "token").write_text("old-run\n")
    subprocess.run([*tool, "start", "--run", "old-run", "hello.candidate", "sh", "-c",
                    f"sleep 1; echo first >> {marks}"], env=env, check=True, timeout=15)
    stale = subprocess.Popen([*tool, "start", "--run", "old-run", "hello.candidate", "sh", "-c",
                              f"echo stale >> {marks}"], env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    (lock / "token").write_text("new-run\n")  # the next run took the lock over
    subprocess.run([*tool, "start", "--run", "new-run", "hello.candidate", "sh", "-c", f"echo new >> {marks}"],
                   env=env, check=True, timeout=15)
    subprocess.run([*tool, "wait", "hello.candidate"], env=env, check=True, timeout=15)
    assert stale.wait(timeout=15) == 1
    assert "no longer holds the host's lock" in stale.stderr.read()
    time.sleep(0.5)
    assert marks.read_text().split() == ["first", "new"]
