"""Backups in an S3-compatible bucket (a real moto_server on 127.0.0.1) and encrypted with age: take,
verify, restore, prune and the MANIFEST.txt download work as on a local folder; an incomplete backup is
never listed as complete and its parts are swept."""

from __future__ import annotations

import os
import time

import pytest

from instances.backups import layout
from instances.backups.manifest import parse_manifest
from instances.backups.restore import backup_restore_request, backup_restore_run
from instances.backups.retention import backups_prune
from instances.backups.services import backup_request, backup_run, backup_verify
from instances.choices import BackupLabel, BackupStatus, RestoreStatus
from instances.models import Backup

from .helpers import CONFIG_FILES, MKDOCS_FILES, TOPS, local_sums
from .helpers import vandalise_lightly as vandalise

pytestmark = pytest.mark.testbed
SECRET = b"APP_SECRET=s3cret"


def take(instance, label=BackupLabel.MANUAL) -> Backup:
    backup = backup_request(instance=instance, label=label, enqueue=False)
    backup_run(backup_id=backup.pk)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    return backup


def stored(s3, backup: Backup, name: str) -> bytes:
    return s3.client().get_object(Bucket=s3.bucket, Key=f"ccp-backups/{backup.location}/{name}")["Body"].read()


def restore(backup: Backup):
    request = backup_restore_request(backup=backup, enqueue=False)
    backup_restore_run(restore_id=request.pk)
    request.refresh_from_db()
    return request


def test_backup_verify_restore_and_prune_in_a_bucket(s3_stack_tenant, s3_storage, settings, superuser, client):
    s3 = s3_storage
    tenant = s3_stack_tenant
    before = local_sums(tenant.path, TOPS)
    backup = take(tenant.instance)

    prefix = f"ccp-backups/{backup.location}/"
    names = {key.removeprefix(prefix) for key in s3.keys(s3.bucket, prefix)}
    assert names == {
        "mkdocs.tar.gz",
        "configs-and-nginx.tar.gz",
        "config-files.tar.gz",
        "host-state.txt",
        "MANIFEST.txt",
    }
    manifest = parse_manifest(stored(s3, backup, layout.MANIFEST).decode())
    assert manifest.encrypted == [] and manifest.file("config-files.tar.gz").size == len(
        stored(s3, backup, "config-files.tar.gz")
    )
    assert not settings.BACKUP_ROOT.exists()  # nothing on the worker's disk

    assert backup_verify(backup=backup).verify_ok, backup.verify_error
    # MANIFEST.txt is downloaded from the bucket through the admin.
    client.force_login(superuser)
    answer = client.get(f"/admin/instances/backup/{backup.pk}/manifest/")
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == stored(s3, backup, layout.MANIFEST)

    vandalise(tenant.path)
    done = restore(backup)
    assert done.status == RestoreStatus.SUCCEEDED, f"{done.error}\n{done.log}"
    assert local_sums(tenant.path, TOPS) == before
    assert not (tenant.path / "mkdocs/docs/new-page.md").exists()

    # A corrupted object is named by verify, and not restored.
    key = f"{prefix}mkdocs.tar.gz"
    data = bytearray(stored(s3, backup, "mkdocs.tar.gz"))
    data[50] ^= 0xFF
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=bytes(data))
    assert "mkdocs.tar.gz is corrupted" in backup_verify(backup=backup).verify_error

    # Prune: keep one per label, no days: the older backup goes, MANIFEST.txt and all.
    settings.CCP_BACKUP_KEEP_PER_LABEL, settings.CCP_BACKUP_KEEP_DAILY_DAYS = 1, 0
    time.sleep(1.1)  # another folder name
    newer = take(tenant.instance)
    report = backups_prune(instance=tenant.instance)
    assert any(f"pruned backup #{backup.pk}" in line for line in report), report
    assert s3.keys(s3.bucket, prefix) == [] and not Backup.objects.filter(pk=backup.pk).exists()
    assert len(s3.keys(s3.bucket, f"ccp-backups/{newer.location}/")) == 5


def test_an_encrypted_backup_holds_no_plaintext_and_needs_the_identity(s3_stack_tenant, s3_storage, age_keys, settings):
    s3 = s3_storage
    tenant = s3_stack_tenant
    before = local_sums(tenant.path, TOPS)
    backup = take(tenant.instance)

    manifest = parse_manifest(stored(s3, backup, layout.MANIFEST).decode())
    assert manifest.encrypted == ["config-files.tar.gz", "configs-and-nginx.tar.gz", "mkdocs.tar.gz"]
    assert manifest.meta["age_recipients"] == settings.CCP_BACKUP_AGE_RECIPIENTS[0]
    assert backup.manifest["config-files.tar.gz"]["encrypted"] is True
    for name in manifest.encrypted:
        data = stored(s3, backup, name)
        assert data.startswith(b"age-encryption.org/v1\n")
        assert SECRET not in data and b"s3cret" not in data and b"\x1f\x8b" not in data[:200]
    # The stored bytes are what MANIFEST.txt sums, so verify needs no key to find corruption.
    assert backup_verify(backup=backup).verify_ok, backup.verify_error

    # Without the identity (the web process, or a worker not given it): verify still checks the sums,
    # and a restore refuses with a sentence before touching the node.
    vandalise(tenant.path)
    edited = local_sums(tenant.path, TOPS)
    settings.CCP_BACKUP_AGE_IDENTITY_FILE = ""
    assert backup_verify(backup=backup).verify_ok
    refused = restore(backup)
    assert refused.status == RestoreStatus.FAILED
    assert "no identity to decrypt it" in refused.error and "CCP_BACKUP_AGE_IDENTITY_FILE" in refused.error
    assert local_sums(tenant.path, TOPS) == edited

    # With another identity: verify says the archives do not open with it.
    import pyrage

    other = age_keys.with_name("other-identity.txt")
    other.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    settings.CCP_BACKUP_AGE_IDENTITY_FILE = str(other)
    problems = backup_verify(backup=backup).verify_error
    assert "cannot be decrypted with the identity in CCP_BACKUP_AGE_IDENTITY_FILE" in problems

    # With the identity: the restore decrypts and puts the files back.
    settings.CCP_BACKUP_AGE_IDENTITY_FILE = str(age_keys)
    backup.refresh_from_db()
    assert backup_verify(backup=backup).verify_ok, backup.verify_error
    done = restore(backup)
    assert done.status == RestoreStatus.SUCCEEDED, f"{done.error}\n{done.log}"
    assert local_sums(tenant.path, TOPS) == before
    assert (tenant.path / ".env").read_bytes() == CONFIG_FILES[".env"]
    assert (tenant.path / "mkdocs/docs/index.md").read_bytes() == MKDOCS_FILES["mkdocs/docs/index.md"]


def test_a_local_backup_is_encrypted_the_same_way(s3_stack_tenant, backup_root, age_keys):
    tenant = s3_stack_tenant
    backup = take(tenant.instance)
    data = (backup_root / backup.location / "config-files.tar.gz").read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n") and b"s3cret" not in data
    assert oct(os.stat(backup_root / backup.location / "config-files.tar.gz").st_mode & 0o777) == "0o600"
    vandalise(tenant.path)
    done = restore(backup)
    assert done.status == RestoreStatus.SUCCEEDED, f"{done.error}\n{done.log}"
    assert (tenant.path / ".env").read_bytes() == CONFIG_FILES[".env"]


def test_parts_of_an_incomplete_backup_are_never_listed_and_are_swept(make_tenant, s3_storage):
    """What a worker killed mid-upload leaves (an object without MANIFEST.txt and an unfinished multipart
    upload) is not a backup, and the next prune removes it; a running backup's files are left alone."""
    s3 = s3_storage
    tenant = make_tenant()
    root = f"ccp-backups/{layout.instance_backups_folder(node_name=tenant.node.name, slug=tenant.instance.slug)}"
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key=f"{root}/20250101T000000Z-manual/mkdocs.tar.gz", Body=b"x" * 100)
    upload = client.create_multipart_upload(Bucket=s3.bucket, Key=f"{root}/20250101T000000Z-manual/config-files.tar.gz")
    client.upload_part(
        Bucket=s3.bucket, Key=upload["Key"], UploadId=upload["UploadId"], PartNumber=1, Body=b"y" * (5 << 20)
    )
    running = Backup.objects.create(
        instance=tenant.instance,
        status=BackupStatus.RUNNING,
        location=f"{root.split('/', 1)[1]}/20250102T000000Z-manual",
    )
    client.put_object(Bucket=s3.bucket, Key=f"ccp-backups/{running.location}/mkdocs.tar.gz", Body=b"in progress")

    report = backups_prune(instance=tenant.instance)

    assert any("20250101T000000Z-manual" in line for line in report), report
    assert s3.keys(s3.bucket, root) == [f"ccp-backups/{running.location}/mkdocs.tar.gz"]
    assert s3.uploads(s3.bucket, root) == []
