"""The systemd units under deploy/ are valid (systemd's own `systemd-analyze verify`, with the paths of this
checkout in place of /opt/ccp), and they run what the README says: one gunicorn with deploy's config,
workers, exactly one beat with the database scheduler."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testbed.fixtures import unavailable

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"


@pytest.fixture
def units(tmp_path) -> Path:
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is missing (Debian's systemd package; tests/testbed/install.sh installs it)")
    venv_bin = Path(sys.executable).parent
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/opt/ccp/.venv/bin/", f"{venv_bin}/").replace("/opt/ccp", str(REPO))
        (tmp_path / unit.name).write_text(text)
    return tmp_path


def test_units_pass_systemd_analyze_verify(units):
    names = ["ccp-web.service", "ccp-worker@1.service", "ccp-worker@2.service", "ccp-beat.service", "ccp.target"]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *[str(units / n) for n in names]],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Warnings (an unknown key, ignored by systemd) count as failures too: nothing is silently dropped.
    assert result.returncode == 0 and result.stderr.strip() == "", result.stdout + result.stderr


def test_units_run_what_the_readme_says():
    web = (UNITS / "ccp-web.service").read_text()
    worker = (UNITS / "ccp-worker@.service").read_text()
    beat = (UNITS / "ccp-beat.service").read_text()
    assert "gunicorn --config deploy/gunicorn.conf.py ccp.wsgi" in web
    assert "celery -A ccp worker" in worker and "TimeoutStopSec=3h" in worker
    assert "celery -A ccp beat" in beat and "django_celery_beat.schedulers:DatabaseScheduler" in beat
    # beat is a plain unit, never a template: there is no way to start a second one by name.
    assert not list(UNITS.glob("ccp-beat@*"))
    for text in (web, worker, beat):
        assert "EnvironmentFile=/etc/ccp/ccp.env" in text and "User=ccp" in text
