"""Helpers of the upgrade tests (a module of its own: no test module imports another)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from upgrades.choices import UpgradeMode
from upgrades.models import Upgrade
from upgrades.services import upgrade_request

REPO = Path(__file__).resolve().parents[2]

# The tenant's upgrade script: sets IMAGE_TAG, pulls, restarts, and logs one numbered line a second.
SCRIPT = """#!/bin/sh
set -eu
target="$1"
i=1
while [ "$i" -le "${STEPS:-20}" ]; do
  echo "upgrade line $i of ${STEPS:-20} towards $target"
  i=$((i + 1))
  sleep 1
done
sed -i "s/^IMAGE_TAG=.*/IMAGE_TAG=$target/" .env
docker compose pull --quiet
docker compose up --detach --wait --wait-timeout 60
echo "upgrade finished"
"""


def install_script(tenant, text: str = SCRIPT) -> None:
    scripts = tenant.path / "scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "upgrade.sh").write_text(text)
    (scripts / "upgrade.sh").chmod(0o755)
    os.chown(scripts, tenant.path.stat().st_uid, tenant.path.stat().st_gid)
    os.chown(scripts / "upgrade.sh", tenant.path.stat().st_uid, tenant.path.stat().st_gid)


def start_worker_process(env: dict, log: Path, *, pool: str = "prefork", concurrency: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ccp",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def wait_final(upgrade: Upgrade, timeout: float = 180) -> Upgrade:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        upgrade.refresh_from_db()
        if upgrade.is_final:
            return upgrade
        time.sleep(0.3)
    raise AssertionError(f"upgrade #{upgrade.pk} still {upgrade.status} after {timeout} s")


def quick(tenant, tag: str) -> Upgrade:
    return upgrade_request(instance=tenant.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag=tag)


def registry_id(docker_engine, tag: str) -> str:
    found = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", docker_engine.image(tag)],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()
