"""`make run` on a fresh copy: SQLite, the file-system broker, web + worker + beat, Ctrl-C stops all."""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_copy(dest: Path) -> None:
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    # Reuse the installed virtualenv: the smoke test is about the panel starting, not about PyPI.
    (dest / ".venv").symlink_to(REPO / ".venv")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL built here
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_make_run_serves_the_admin_and_stops_on_ctrl_c(tmp_path):
    fresh_copy(tmp_path)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "CCP_ENCRYPTION_KEYS",
            "DJANGO_SETTINGS_MODULE",
            "DEBUG",
        }
    }
    env.update({"CCP_PORT": str(port), "CCP_ADMIN_PASSWORD": "smoke-test-password"})
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        ["make", "run"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and status != 200:
            status, body = get(f"http://127.0.0.1:{port}/healthz")
            time.sleep(0.5)
        log.seek(0)
        output = log.read()
        assert status == 200, f"/healthz answered {status} {body!r}; log:\n{output[-3000:]}"
        assert '"broker": "ok"' in body and '"database": "ok"' in body
        login_status, login = get(f"http://127.0.0.1:{port}/admin/login/")
        assert login_status == 200 and "id_username" in login
        assert (tmp_path / "var" / "ccp.sqlite3").exists()
        assert (tmp_path / "var" / "encryption_keys").exists()
        for _ in range(60):  # the worker and beat announce themselves a moment after the web server
            log.seek(0)
            output = log.read()
            if "ready." in output and "beat: Starting" in output and "sign in as admin" in output:
                break
            time.sleep(0.5)
        assert "ready." in output, output[-3000:]
        # The default pool: threads, sized for tens of node operations at once (README "Celery and long operations").
        assert "concurrency: 20 (thread)" in output, output[-3000:]
        assert "beat: Starting" in output, output[-3000:]
        # How to sign in comes last, after the servers' start-up logs (issue 13, item 8).
        assert "sign in as admin" in output and "changepassword admin" in output, output[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 0
    leftover = subprocess.run(["pgrep", "-f", f"runserver 127.0.0.1:{port}"], capture_output=True)
    assert leftover.returncode == 1, "the web server outlived Ctrl-C"
