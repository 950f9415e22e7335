"""A full panel disk: BACKUP_ROOT on a small tmpfs. The backup fails with a sentence that names the path
and the free space (no traceback, no half-written backup), and the next one, with room, succeeds."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from instances.backups.services import backup_request, backup_run
from instances.choices import BackupStatus
from instances.models import Backup
from instances.operations.models import InstanceLock
from tests.testbed.fixtures import unavailable

pytestmark = pytest.mark.testbed


@pytest.fixture
def small_backup_root(settings, tmp_path) -> Path:
    root = tmp_path / "small-disk"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(root)], capture_output=True, text=True
    )
    if mounted.returncode:
        unavailable(f"cannot mount a tmpfs for BACKUP_ROOT (needs root): {mounted.stderr.strip()}")
    settings.BACKUP_ROOT = root
    yield root
    subprocess.run(["umount", str(root)], capture_output=True, check=False)


def _backup(tenant) -> Backup:
    backup = backup_request(instance=tenant.instance, enqueue=False)
    backup_run(backup_id=backup.pk)
    return Backup.objects.get(pk=backup.pk)


def test_a_full_backup_disk_is_named_with_its_free_space_and_the_next_backup_succeeds(
    make_tenant, small_backup_root, caplog
):
    # 2 MiB that gzip cannot shrink: more than the 1 MiB disk holds.
    tenant = make_tenant(extra={"mkdocs/docs/big.bin": os.urandom(2 * 1024 * 1024)})

    failed = _backup(tenant)

    assert failed.status == BackupStatus.FAILED
    assert failed.error.startswith(
        f"The panel's backup disk is full: no space left under BACKUP_ROOT {small_backup_root}"
    )
    assert "mkdocs.tar.gz" in failed.error and " free of 1.0\xa0MB" in failed.error, failed.error
    assert "Errno" not in failed.error and "Traceback" not in caplog.text
    assert list(small_backup_root.rglob("*.tar.gz")) == [], "a half-written backup was left behind"
    assert not InstanceLock.objects.filter(instance=tenant.instance).exists()

    subprocess.run(["mount", "-o", "remount,size=16m", str(small_backup_root)], check=True)
    succeeded = _backup(tenant)

    assert succeeded.status == BackupStatus.SUCCEEDED, succeeded.error
    assert (small_backup_root / succeeded.location / "mkdocs.tar.gz").stat().st_size > 2 * 1024 * 1024
