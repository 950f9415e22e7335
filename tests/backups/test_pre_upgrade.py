"""A full upgrade takes a pre-upgrade backup before it changes anything, and stops when it fails."""

from __future__ import annotations

import tarfile

import pytest

from instances.choices import BackupLabel, BackupStatus
from instances.models import Backup
from instances.operations.models import InstanceLock
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.services import upgrade_request, upgrade_run

from .helpers import CONFIG_FILES

pytestmark = pytest.mark.testbed

# The tenant's own upgrade script: it changes .env, so the backup shows whether it ran before or after.
SCRIPT = b'#!/bin/sh\necho "UPGRADED_TO=$1" >> .env\n'


@pytest.fixture
def scripted_tenant(make_tenant, docker_engine):
    tenant = make_tenant(extra={"scripts/upgrade.sh": SCRIPT})
    (tenant.path / "scripts/upgrade.sh").chmod(0o755)
    return tenant


def env_in_backup(folder) -> bytes:
    with tarfile.open(folder / "config-files.tar.gz", "r:gz") as tar:
        return tar.extractfile(".env").read()


def test_the_backup_is_taken_before_the_script_runs(scripted_tenant, backup_root):
    tenant = scripted_tenant
    upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.FULL, image_tag="v2", enqueue=False)
    upgrade_run(upgrade_id=upgrade.pk)
    upgrade.refresh_from_db()

    backup = Backup.objects.get(instance=tenant.instance)
    assert backup.label == BackupLabel.PRE_UPGRADE and backup.status == BackupStatus.SUCCEEDED, backup.error
    assert upgrade.state["backup_id"] == backup.pk
    assert b"UPGRADED_TO=v2" in (tenant.path / ".env").read_bytes()  # the script ran …
    assert env_in_backup(backup_root / backup.location) == CONFIG_FILES[".env"]  # … after the backup


def test_a_failed_backup_stops_the_upgrade_before_any_change(scripted_tenant, settings, tmp_path):
    tenant = scripted_tenant
    (tmp_path / "not-a-directory").write_text("")
    settings.BACKUP_ROOT = tmp_path / "not-a-directory" / "backups"  # the panel cannot write here
    upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.FULL, image_tag="v2", enqueue=False)
    upgrade_run(upgrade_id=upgrade.pk)
    upgrade.refresh_from_db()

    assert upgrade.status == UpgradeStatus.FAILED
    assert "pre-upgrade backup failed" in upgrade.error
    backup = Backup.objects.get(instance=tenant.instance)
    assert backup.status == BackupStatus.FAILED and "Not a directory" in backup.error
    assert (tenant.path / ".env").read_bytes() == CONFIG_FILES[".env"]  # the script never ran
    assert not InstanceLock.objects.filter(instance=tenant.instance).exists()
