"""A backup whose worker died is closed by the lock reconciler; the manifest format round-trips."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from instances.backups import layout
from instances.backups.manifest import FileEntry, Manifest, ManifestError, format_manifest, parse_manifest
from instances.choices import BackupStatus, RestoreStatus
from instances.models import Backup, Restore
from instances.operations.models import InstanceLock
from instances.operations.reconcile import reconcile_stale_locks


@pytest.mark.django_db
def test_a_dead_workers_backup_is_failed_and_its_partial_folder_removed(make_instance, settings, tmp_path):
    settings.BACKUP_ROOT = tmp_path
    instance = make_instance()
    backup = Backup.objects.create(
        instance=instance,
        status=BackupStatus.RUNNING,
        location=f"{instance.node.name}/{instance.slug}/20250101T000000Z-manual",
    )
    partial = layout.partial_of(tmp_path / backup.location)
    partial.mkdir(parents=True)
    (partial / "mkdocs.tar.gz").write_bytes(b"half")
    long_ago = timezone.now() - timedelta(hours=1)
    InstanceLock.objects.create(
        instance=instance, kind="backup", operation_id=backup.pk, owner="gone-host:1", heartbeat_at=long_ago
    )

    report = reconcile_stale_locks()

    backup.refresh_from_db()
    assert backup.status == BackupStatus.FAILED and backup.error.startswith("Interrupted")
    assert backup.location == "" and not partial.exists()
    assert not InstanceLock.objects.exists() and "backup" in report[0]


@pytest.mark.django_db
def test_a_dead_workers_restore_is_interrupted_and_the_instance_flagged(make_instance):
    instance = make_instance()
    restore = Restore.objects.create(instance=instance, status=RestoreStatus.RUNNING)
    InstanceLock.objects.create(
        instance=instance,
        kind="restore",
        operation_id=restore.pk,
        owner="gone-host:1",
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    reconcile_stale_locks()
    restore.refresh_from_db()
    instance.refresh_from_db()
    assert restore.status == RestoreStatus.INTERRUPTED and ".ccp-restore-" in restore.error
    assert f"Restore #{restore.pk}" in instance.attention


def test_manifest_round_trip_and_sha256sum_compatible_lines():
    manifest = Manifest(
        meta={"instance": "t", "node": "n", "label": "manual", "started": "2025-01-01T00:00:00Z"},
        files=[
            FileEntry("config-files.tar.gz", "a" * 64, 10, (".env", "odd name.yml")),
            FileEntry("host-state.txt", "b" * 64, 3),
        ],
    )
    text = format_manifest(manifest)
    assert parse_manifest(text) == manifest
    assert f"{'b' * 64}  3  host-state.txt" in text.splitlines()
    with pytest.raises(ManifestError):
        parse_manifest("not a manifest\n")
    with pytest.raises(ManifestError, match="line"):
        parse_manifest(text + "garbage\n")


def test_config_files_are_picked_by_name():
    inventory = layout.Inventory(
        {
            ".env": "f",
            "docker-compose.yml": "f",
            "compose.override.yaml": "f",
            "app.conf": "l",
            "notes.txt": "f",
            "mkdocs": "d",
            "settings.json": "d",
            ".ccp": "d",
            ".env.ccp-tmp": "f",
            ".git": "d",
        }
    )
    assert layout.config_files(inventory) == [".env", "app.conf", "compose.override.yaml", "docker-compose.yml"]
    assert inventory.is_git_checkout
    assert [plan.name for plan in layout.archive_plan(inventory)] == ["mkdocs.tar.gz", "config-files.tar.gz"]
