"""The production profile, as README "Running in production" tells an operator to run it: DEBUG off,
settings only from the environment, a PostgreSQL database of its own (made for the test, dropped after),
`check --deploy`, `migrate`, `collectstatic`, `ensure_admin`, then gunicorn with deploy/gunicorn.conf.py
serving the admin and the static files (WhiteNoise) to requests that come through a TLS proxy."""

from __future__ import annotations

import gzip
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import django.contrib.admin
import environ
import psycopg
import pytest
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families

from tests.testbed.fixtures import unavailable
from tests.testbed.tenant import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
HOST = "ccp.example.test"
METRICS_TOKEN = secrets.token_urlsafe(32)
ADMIN_CSS = Path(django.contrib.admin.__file__).parent / "static" / "admin" / "css" / "base.css"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def fetch(url: str, headers: dict | None = None, data: bytes | None = None):
    """(status, headers, body) of one request; redirects are answers, not followed."""
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def production_database():
    """A new, empty PostgreSQL database beside DATABASE_URL's, dropped afterwards."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        unavailable("the production test needs DATABASE_URL to name a PostgreSQL server")
    config = environ.Env.db_url_config(url)
    name = f"ccp_production_test_{os.getpid()}"
    params = {"host": config["HOST"] or "127.0.0.1", "port": config["PORT"] or 5432, "user": config["USER"],
              "password": config["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    credentials = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
    yield f"postgres://{credentials}@{params['host']}:{params['port']}/{name}"
    with psycopg.connect(**params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def production_env(production_database, tmp_path) -> dict:
    """Only what README "Running in production" sets: no test settings, no DEBUG, no leftovers of the
    suite's own environment (its relaxed HTTPS settings, its keys)."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "CELERY_BROKER_URL"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({
        "DJANGO_SETTINGS_MODULE": "ccp.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "CCP_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": production_database,
        # 127.0.0.1: Prometheus on this host scrapes gunicorn directly (README "Metrics").
        "ALLOWED_HOSTS": f"{HOST},127.0.0.1",
        "CCP_METRICS_TOKEN": METRICS_TOKEN,
        "CCP_METRICS_ALLOWED_NETWORKS": "127.0.0.1/32",
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "CCP_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "BACKUP_ROOT": str(tmp_path / "backups"),
        "CCP_ADMIN_PASSWORD": "a-long-admin-password-for-the-test",
    })
    return env


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def gunicorn(production_env, tmp_path):
    """The README's steps, then the web process the systemd unit starts (deploy/systemd/ccp-web.service)."""
    check = manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    assert "System check identified no issues" in check.stdout, check.stdout + check.stderr
    manage(production_env, "migrate", "--noinput")
    manage(production_env, "collectstatic", "--noinput")
    manage(production_env, "ensure_admin")
    port = free_port()
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "--workers", "2", "ccp.wsgi"],
        cwd=BASE_DIR, env={**production_env, "CCP_PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            fetch(f"{url}/static/admin/css/base.css")  # any answer will do (it is a redirect to https)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError((tmp_path / "web.log").read_text()) from None
            time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()
    web_log = (tmp_path / "web.log").read_text()
    assert '" 500 ' not in web_log, web_log


def cookies(headers) -> dict:
    return dict(re.match(r"([^=]+)=([^;]*)", c).groups() for c in headers.get_all("Set-Cookie") or [])


def test_production_profile_serves_the_admin_and_static_files(gunicorn):
    proxied = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}

    # Plain http that did not come through the TLS proxy is sent to https.
    status, headers, _ = fetch(f"{gunicorn}/admin/login/", {"Host": HOST})
    assert status == 301 and headers["Location"] == f"https://{HOST}/admin/login/"
    # An unknown host name is refused (ALLOWED_HOSTS), DEBUG off: no technical page.
    status, _, body = fetch(f"{gunicorn}/admin/login/", {**proxied, "Host": "evil.example"})
    assert status == 400 and b"DisallowedHost" not in body

    status, headers, body = fetch(f"{gunicorn}/admin/login/", proxied)
    assert status == 200, body[:2000]
    page = body.decode()
    assert "Log in" in page and "CCP" in page
    assert "Strict-Transport-Security" in headers
    assert all("Secure" in c for c in headers.get_all("Set-Cookie")), headers.get_all("Set-Cookie")

    # The static file the page links to, served by gunicorn itself (WhiteNoise), byte for byte.
    assert '/static/admin/css/base.css' in page
    status, headers, body = fetch(f"{gunicorn}/static/admin/css/base.css", proxied)
    assert status == 200 and body == ADMIN_CSS.read_bytes()
    assert headers["Content-Type"].startswith("text/css")
    status, headers, body = fetch(f"{gunicorn}/static/admin/css/base.css", {**proxied, "Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == ADMIN_CSS.read_bytes()
    status, _, _ = fetch(f"{gunicorn}/static/admin/css/no-such-file.css", proxied)
    assert status == 404

    # The admin that ensure_admin created signs in through the proxy with secure cookies.
    status, headers, body = fetch(f"{gunicorn}/admin/login/", proxied)
    csrf = cookies(headers)["csrftoken"]
    form = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body.decode()).group(1)
    data = f"csrfmiddlewaretoken={form}&username=admin&password=a-long-admin-password-for-the-test&next=/admin/"
    status, headers, _ = fetch(f"{gunicorn}/admin/login/?next=/admin/", {
        **proxied, "Cookie": f"csrftoken={csrf}", "Origin": f"https://{HOST}", "Referer": f"https://{HOST}/admin/login/",
        "Content-Type": "application/x-www-form-urlencoded"}, data.encode())
    assert status == 302 and headers["Location"] == "/admin/", headers
    session = cookies(headers)["sessionid"]
    status, _, body = fetch(f"{gunicorn}/admin/", {**proxied, "Cookie": f"sessionid={session}"})
    assert status == 200 and "Fleet administration" in body.decode()


def test_production_profile_serves_metrics(gunicorn):
    proxied = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    # Through the proxy the request comes from 127.0.0.1, an allowed network; only the token counts.
    status, headers, _ = fetch(f"{gunicorn}/metrics", proxied)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    status, headers, body = fetch(f"{gunicorn}/metrics", {**proxied, "Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"ccp_instances", "ccp_operations", "ccp_instance_last_good_backup_age_seconds"} <= names
    # Prometheus on this host, straight to gunicorn in plain http: allowed by network, and not redirected
    # to https (SECURE_REDIRECT_EXEMPT).
    status, _, body = fetch(f"{gunicorn}/metrics")
    assert status == 200 and b'ccp_instances{health="unknown"} 0' in body
