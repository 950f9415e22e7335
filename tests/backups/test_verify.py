"""Verify re-hashes every file against MANIFEST.txt and names what is wrong."""

from __future__ import annotations

import pytest

from ccp.errors import CCPError
from instances.backups.services import backup_request, backup_run, backup_verify
from instances.choices import BackupStatus
from instances.models import Backup

pytestmark = pytest.mark.testbed


@pytest.fixture
def good_backup(make_tenant, backup_root) -> Backup:
    tenant = make_tenant()
    backup = backup_request(instance=tenant.instance, enqueue=False)
    backup_run(backup_id=backup.pk)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    return backup


def test_an_intact_backup_verifies(good_backup):
    backup = backup_verify(backup=good_backup)
    assert backup.verify_ok is True and backup.verify_error == "" and backup.verified_at is not None


def test_one_corrupted_byte_fails_verification_naming_the_file(good_backup, backup_root):
    archive = backup_root / good_backup.location / "configs-and-nginx.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))

    backup = backup_verify(backup=good_backup)
    backup.refresh_from_db()
    assert backup.verify_ok is False
    assert "configs-and-nginx.tar.gz is corrupted" in backup.verify_error
    assert "mkdocs.tar.gz" not in backup.verify_error


def test_a_missing_file_fails_verification_naming_the_file(good_backup, backup_root):
    (backup_root / good_backup.location / "host-state.txt").unlink()
    backup = backup_verify(backup=good_backup)
    assert backup.verify_ok is False and backup.verify_error == "host-state.txt is missing"


def test_a_tampered_manifest_is_caught(good_backup, backup_root):
    manifest = backup_root / good_backup.location / "MANIFEST.txt"
    lines = manifest.read_text().splitlines()
    lines = [line for line in lines if not line.endswith("  mkdocs.tar.gz")]
    manifest.write_text("\n".join(lines) + "\n")
    backup = backup_verify(backup=good_backup)
    assert backup.verify_ok is False
    assert "mkdocs.tar.gz is recorded for this backup but missing from MANIFEST.txt" in backup.verify_error


def test_only_a_complete_backup_can_be_verified(make_tenant):
    backup = Backup.objects.create(instance=make_tenant().instance, status=BackupStatus.FAILED)
    with pytest.raises(CCPError, match="only a complete backup"):
        backup_verify(backup=backup)
