"""Schema fuzzing: schemathesis against a running panel (gunicorn in its own process, on loopback),
bounded to a few hundred cases and two minutes. No answer may be a 500.

Operations that reach a node (check, re-pin, check health, preview, render, upgrade, back up, restore)
are left out: fuzzed node addresses must never be contacted (only loopback may be a target). Every
other operation, reads and writes, is fuzzed as a superuser, who passes every permission check and so
reaches the most code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from instances.models import Instance, Node
from tests.testbed.tenant import free_port
from upgrades.models import Release

BASE_DIR = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")
NODE_REACHING = r"\}/(check|repin-host-key|check-health|preview|render|upgrades|backups|restore)/$"
MAX_EXAMPLES = 8
TIME_BUDGET = 90


@pytest.fixture
def running_panel(transactional_db, worker_process_env, tmp_path):
    """The panel served by gunicorn from another process, sharing this test's (committed) database."""
    port = free_port()
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "ccp.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "60",
        ],
        cwd=BASE_DIR,
        env=worker_process_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2)  # noqa: S310 - our own loopback server
            break
        except OSError:
            if process.poll() is not None:
                raise AssertionError((tmp_path / "web.log").read_text()) from None
            time.sleep(0.3)
    yield url, tmp_path / "web.log"
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_no_request_gets_a_500(running_panel, superuser, tmp_path):
    url, web_log = running_panel
    node = Node(name="fuzz-node", address="127.0.0.1", ssh_port=1, driver="ssh")
    node.full_clean()
    node.save()
    Instance.objects.create(
        name="Fuzz",
        slug="fuzz",
        node=node,
        install_dir="/srv/ccp-testbed/fuzz",
        compose_project="fuzz",
        ports={"http": 38001},
    )
    Release.objects.create(version="v1.0.0", image_tag="v1", template_set="testbed")
    token = Token.objects.create(user=superuser).key

    started = time.monotonic()
    result = subprocess.run(
        [
            str(ST),
            "run",
            f"{url}/api/schema/",
            "--url",
            url,
            "-H",
            f"Authorization: Token {token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--max-time",
            str(TIME_BUDGET),
            "--exclude-path-regex",
            NODE_REACHING,
            "--request-timeout",
            "20",
            "--no-color",
            "--seed",
            "9",
            "--report",
            "ndjson",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIME_BUDGET + 60,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:] + "\n--- web log ---\n" + web_log.read_text()[-3000:]
    cases = _cases(tmp_path / "report")
    assert cases >= 100, f"only {cases} cases ran:\n{output[-3000:]}"
    assert elapsed < 150, f"fuzzing took {elapsed:.0f} s"
    assert " 500 " not in web_log.read_text() and "Traceback" not in web_log.read_text()


def _cases(report_dir: Path) -> int:
    """How many requests schemathesis sent, from its ndjson report."""
    total = 0
    for path in report_dir.glob("*.ndjson"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            for value in event.values():
                if isinstance(value, dict) and "recorder" in value:
                    total += len(value["recorder"].get("interactions", {}))
    return total
