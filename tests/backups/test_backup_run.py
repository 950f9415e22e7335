"""Taking backups of tenants on a real SSH node: what lands on disk, and what a failure leaves behind."""

from __future__ import annotations

import os
import shutil
import tarfile
import threading
from pathlib import Path

import pytest
from django.utils import timezone

from ccp.errors import CCPError, Conflict
from instances.backups.manifest import parse_manifest
from instances.backups.services import backup_for_upgrade, backup_request, backup_run
from instances.choices import BackupLabel, BackupStatus
from instances.drivers import close_all, driver_for
from instances.models import Backup
from instances.operations.models import InstanceLock

from .helpers import MKDOCS_FILES, local_sums, make_ssh_node, sha256

pytestmark = pytest.mark.testbed


def run_backup(tenant, label=BackupLabel.MANUAL, **kwargs) -> Backup:
    backup = backup_request(instance=tenant.instance, label=label, enqueue=False)
    backup_run(backup_id=backup.pk, **kwargs)
    return Backup.objects.get(pk=backup.pk)


def extract(archive: Path, into: Path) -> Path:
    into.mkdir()
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="tar")
    return into


def test_backup_over_ssh_holds_the_nodes_files(make_tenant, backup_root, tmp_path):
    tenant = make_tenant()
    backup = run_backup(tenant)

    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    folder = backup_root / backup.location
    assert folder.parent == backup_root / tenant.node.name / tenant.instance.slug
    assert folder.name.endswith("-manual") and not list(folder.parent.glob("*.partial"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["mkdocs.tar.gz", "configs-and-nginx.tar.gz", "config-files.tar.gz", "host-state.txt", "MANIFEST.txt"]
    )

    # Extracted archives equal the node's files, by sha256 computed on the node.
    node_sums = driver_for(tenant.node).checksums(
        ["mkdocs", "configs", "nginx", ".env", "docker-compose.yml"], base=tenant.instance.install_dir
    )
    extracted = {}
    for archive in ("mkdocs.tar.gz", "configs-and-nginx.tar.gz", "config-files.tar.gz"):
        out = extract(folder / archive, tmp_path / archive)
        extracted.update(local_sums(out, [p.name for p in out.iterdir()]))
    assert extracted == node_sums
    assert extracted["mkdocs/docs/été.md"] == sha256(MKDOCS_FILES["mkdocs/docs/été.md"])
    assert "notes.txt" not in extracted and not any(p.startswith("data/") for p in extracted)

    # The manifest matches the files, on disk and on the row.
    manifest = parse_manifest((folder / "MANIFEST.txt").read_text())
    assert {e.name: (e.sha256, e.size) for e in manifest.files} == {
        p.name: (sha256(p.read_bytes()), p.stat().st_size) for p in folder.iterdir() if p.name != "MANIFEST.txt"
    }
    assert manifest.meta["instance"] == tenant.instance.slug and manifest.meta["node"] == tenant.node.name
    assert manifest.meta["label"] == "manual" and manifest.meta["ccp_version"]
    assert manifest.meta["started"] <= manifest.meta["finished"]
    assert manifest.file("config-files.tar.gz").paths == (".env", "docker-compose.yml")
    assert backup.manifest == manifest.as_json()
    assert backup.size_bytes == sum(p.stat().st_size for p in folder.iterdir())

    host_state = (folder / "host-state.txt").read_text()
    for heading in ("## compose ps", "## compose images", "## disk usage", "## kernel"):
        assert heading in host_state
    assert not InstanceLock.objects.filter(instance=tenant.instance).exists()


def test_git_state_only_for_a_git_checkout(make_tenant, backup_root):
    plain, checkout = make_tenant(), make_tenant(git=True)
    assert not (backup_root / run_backup(plain).location / "git-state.txt").exists()

    backup = run_backup(checkout)
    git_state = (backup_root / backup.location / "git-state.txt").read_text()
    assert "## HEAD" in git_state and "## branch" in git_state and "## stash list" in git_state
    assert "\nmain\n" in git_state  # the branch
    assert "?? .env" in git_state  # status: files outside the commit
    assert "git-state.txt" in backup.manifest


def test_missing_directories_are_skipped(make_tenant, backup_root):
    tenant = make_tenant()
    shutil.rmtree(tenant.path / "configs")
    shutil.rmtree(tenant.path / "nginx")
    backup = run_backup(tenant)
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    assert "configs-and-nginx.tar.gz" not in backup.manifest and "mkdocs.tar.gz" in backup.manifest


def test_a_broken_stream_leaves_no_backup_and_no_partial(db, ssh_node_factory, make_tenant, backup_root):
    """The connection dies halfway through mkdocs.tar.gz: the row says failed with the reason, and
    nothing is left on disk."""
    ssh = ssh_node_factory()
    node = make_ssh_node(ssh)
    big = {f"mkdocs/assets/blob-{i}.bin": os.urandom(8 * 1024 * 1024) for i in range(5)}
    tenant = make_tenant(node=node, extra=big)
    killed = threading.Event()

    def kill_connection(name: str, size: int) -> None:
        if name == "mkdocs.tar.gz" and size > 1024 * 1024 and not killed.is_set():
            killed.set()
            ssh.stop()  # ends sshd and every session it accepted: the stream breaks mid-archive

    try:
        backup = run_backup(tenant, on_progress=kill_connection)
    finally:
        close_all()
    assert killed.is_set()
    assert backup.status == BackupStatus.FAILED
    assert backup.error.startswith("mkdocs.tar.gz failed after "), backup.error
    assert backup.location == ""
    assert backup.finished_at is not None
    assert not [p for p in backup_root.rglob("*") if p.is_file()]
    assert not list(backup_root.rglob("*.partial"))
    assert not InstanceLock.objects.filter(instance=tenant.instance).exists()


def test_pre_upgrade_backup_runs_inline_under_the_callers_lock(make_tenant, backup_root):
    tenant = make_tenant()
    InstanceLock.objects.create(instance=tenant.instance, kind="upgrade", operation_id=1, heartbeat_at=timezone.now())
    backup = backup_for_upgrade(instance=tenant.instance, driver=driver_for(tenant.node))
    assert backup.status == BackupStatus.SUCCEEDED and backup.label == BackupLabel.PRE_UPGRADE
    assert (backup_root / backup.location / "MANIFEST.txt").is_file()


def test_pre_upgrade_backup_failure_is_recorded_and_leaves_nothing(make_tenant, backup_root):
    tenant = make_tenant()
    tenant.instance.install_dir = str(tenant.path / "gone")
    backup = backup_for_upgrade(instance=tenant.instance, driver=driver_for(tenant.node))
    assert backup.status == BackupStatus.FAILED
    assert "does not exist" in backup.error
    assert not [p for p in backup_root.rglob("*") if p.is_file()]
    assert not list(backup_root.rglob("*.partial"))


def test_second_request_on_a_busy_instance_is_refused(make_tenant, backup_root):
    tenant = make_tenant()
    first = backup_request(instance=tenant.instance, enqueue=False)
    with pytest.raises(Conflict) as refused:
        backup_request(instance=tenant.instance, enqueue=False)
    assert f"backup #{first.pk}" in refused.value.message
    assert Backup.objects.filter(instance=tenant.instance).count() == 1


def test_a_disabled_instance_is_not_backed_up(make_tenant, backup_root):
    tenant = make_tenant(status="disabled")
    with pytest.raises(CCPError, match="disabled"):
        backup_request(instance=tenant.instance, enqueue=False)
