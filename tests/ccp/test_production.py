"""The production profile, as README "Running in production" tells an operator to run it: DEBUG off,
settings only from the environment, a PostgreSQL database of its own (made for the test, dropped after),
`check --deploy`, `migrate`, `collectstatic`, `ensure_admin`, then gunicorn with deploy/gunicorn.conf.py
serving the admin and the static files (WhiteNoise) to requests that come through a TLS proxy — and then
deploy/nginx/ccp.conf itself, run by a real nginx on loopback ports in front of that gunicorn."""

from __future__ import annotations

import datetime
import getpass
import gzip
import ipaddress
import os
import re
import secrets
import shutil
import ssl
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
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from tests.testbed.fixtures import unavailable
from tests.testbed.tenant import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
REPO_NGINX = BASE_DIR / "deploy" / "nginx" / "ccp.conf"
HOST = "ccp.example.test"
METRICS_TOKEN = secrets.token_urlsafe(32)
ADMIN_CSS = Path(django.contrib.admin.__file__).parent / "static" / "admin" / "css" / "base.css"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def fetch(url: str, headers: dict | None = None, data: bytes | None = None, context: ssl.SSLContext | None = None):
    """(status, headers, body) of one request; redirects are answers, not followed."""
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310 - loopback only
    opener = (
        OPENER
        if context is None
        else urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    )
    try:
        with opener.open(request, timeout=30) as response:
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
    params = {
        "host": config["HOST"] or "127.0.0.1",
        "port": config["PORT"] or 5432,
        "user": config["USER"],
        "password": config["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
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
    env.update(
        {
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
        }
    )
    return env


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
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
        cwd=BASE_DIR,
        env={**production_env, "CCP_PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
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
    assert "/static/admin/css/base.css" in page
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
    status, headers, _ = fetch(
        f"{gunicorn}/admin/login/?next=/admin/",
        {
            **proxied,
            "Cookie": f"csrftoken={csrf}",
            "Origin": f"https://{HOST}",
            "Referer": f"https://{HOST}/admin/login/",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        data.encode(),
    )
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


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _site_config(gunicorn_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx/ccp.conf with this run's ports, name and certificate: each value the README tells the
    operator to replace must be found, so the example cannot drift from what is tested."""
    text = (REPO_NGINX).read_text()
    for old, new in (
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{gunicorn_port};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("/etc/letsencrypt/live/ccp.example.org/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/ccp.example.org/privkey.pem", str(key)),
        ("ccp.example.org", HOST),
    ):
        assert old in text, f"deploy/nginx/ccp.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture
def nginx(gunicorn, tmp_path):
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        unavailable("nginx is missing (tests/testbed/install.sh installs it)")
    prefix = tmp_path / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True)
    cert, key = _self_signed(tmp_path)
    http_port, https_port = free_port(), free_port()
    (prefix / "ccp.conf").write_text(_site_config(int(gunicorn.rsplit(":", 1)[1]), http_port, https_port, cert, key))
    (prefix / "nginx.conf").write_text(f"""
user {getpass.getuser()};
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy; fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
    include {prefix}/ccp.conf;
}}
""")
    argv = [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(prefix / "nginx.conf")]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([*argv, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 30
    while True:
        try:
            fetch(f"https://127.0.0.1:{https_port}/healthz", {"Host": HOST}, context=context)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError((prefix / "error.log").read_text()) from None
            time.sleep(0.2)
    yield f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}", context
    process.terminate()
    process.wait(timeout=30)


def test_through_the_nginx_example(nginx):
    http_url, https_url, context = nginx
    host = {"Host": HOST}
    # Port 80 only redirects; the proxy sets X-Forwarded-Proto itself, so CCP knows https from http.
    status, headers, _ = fetch(f"{http_url}/admin/login/", host)
    assert status == 301 and headers["Location"] == f"https://{HOST}/admin/login/"
    status, headers, body = fetch(f"{https_url}/admin/login/", {**host, "X-Forwarded-Proto": "http"}, context=context)
    assert status == 200 and "Log in" in body.decode(), (status, body[:500])  # a client's header is overwritten
    assert "Strict-Transport-Security" in headers
    assert all("Secure" in c for c in headers.get_all("Set-Cookie"))
    status, headers, body = fetch(f"{https_url}/static/admin/css/base.css", host, context=context)
    assert status == 200 and body == ADMIN_CSS.read_bytes() and headers["Content-Type"].startswith("text/css")
    # nginx connects from 127.0.0.1, a network /metrics allows: through the proxy that must not count.
    status, _, _ = fetch(f"{https_url}/metrics", host, context=context)
    assert status == 401
    status, _, body = fetch(
        f"{https_url}/metrics", {**host, "Authorization": f"Bearer {METRICS_TOKEN}"}, context=context
    )
    assert status == 200 and b"# TYPE ccp_instances gauge" in body
