"""Restore round trip on a real node with a running stack: change the tenant's files, restore, and the
node (and what its containers serve) equals the backup again."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

import pytest

from ccp.errors import Conflict
from instances.backups.restore import backup_restore_request, backup_restore_run
from instances.backups.services import backup_request, backup_run
from instances.choices import BackupStatus, RestoreStatus
from instances.models import Backup, Instance, Restore
from instances.operations.models import InstanceLock

from .helpers import COMPOSE, CONFIG_FILES, MKDOCS_FILES, free_port, local_sums, wait_for

pytestmark = pytest.mark.testbed


def served(port: int, path: str) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:  # noqa: S310
            return response.read()
    except OSError:
        return None


def take_backup(instance: Instance) -> Backup:
    backup = backup_request(instance=instance, enqueue=False)
    backup_run(backup_id=backup.pk)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    return backup


def vandalise(path) -> None:
    """What an operator might regret: edit, add and delete tenant content, change .env."""
    (path / "mkdocs/docs/index.md").write_bytes(b"# Overwritten by mistake\n")
    (path / "mkdocs/docs/new-page.md").write_bytes(b"added after the backup\n")
    (path / "mkdocs/mkdocs.yml").unlink()
    (path / "mkdocs/docs/current.md").unlink()
    (path / ".env").write_bytes(b"COMPOSE_PROJECT_NAME=tenant\nAPP_SECRET=changed\n")
    (path / "notes.txt").write_bytes(b"edited after the backup; not part of any archive\n")


@pytest.fixture
def stack_tenant(make_tenant, docker_engine):
    port = free_port()
    compose = COMPOSE.format(image=docker_engine.image("v1"), port=port).encode()
    tenant = make_tenant(extra={"docker-compose.yml": compose}, compose_project=f"ccp-restore-{port}")
    run = ["docker", "compose", "--project-name", tenant.instance.compose_project]
    up = subprocess.run([*run, "up", "-d", "--wait"], cwd=tenant.path, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    tenant.port = port
    yield tenant
    subprocess.run([*run, "down", "--timeout", "1"], cwd=tenant.path, capture_output=True, timeout=120)


def test_restore_round_trip_through_the_api_and_a_worker(
    celery_worker_thread, stack_tenant, backup_root, superuser, api
):
    tenant = stack_tenant
    backup = take_backup(tenant.instance)
    before = local_sums(tenant.path, ["mkdocs", "configs", "nginx", ".env", "docker-compose.yml"])
    vandalise(tenant.path)
    assert served(tenant.port, "/docs/docs/index.md") == b"# Overwritten by mistake\n"

    client = api(superuser)
    url = f"/api/v1/backups/{backup.pk}/restore/"
    unconfirmed = client.post(url, {}, format="json")
    assert unconfirmed.status_code == 400
    assert unconfirmed.json()["will_overwrite"] == ["mkdocs/", "configs/", "nginx/", ".env", "docker-compose.yml"]
    answer = client.post(url, {"confirm": True}, format="json")
    assert answer.status_code == 202, answer.content
    assert answer["Location"].endswith(f"/api/v1/backups/{backup.pk}/")

    deadline = time.monotonic() + 120
    while (restore := Restore.objects.get(backup=backup)).status in (RestoreStatus.PENDING, RestoreStatus.RUNNING):
        assert time.monotonic() < deadline, "restore did not finish"
        time.sleep(0.2)
    assert restore.status == RestoreStatus.SUCCEEDED, f"{restore.error}\n{restore.log}"

    # The node's files equal the backup again: edits undone, the added page gone, the deleted file back.
    assert local_sums(tenant.path, ["mkdocs", "configs", "nginx", ".env", "docker-compose.yml"]) == before
    assert not (tenant.path / "mkdocs/docs/new-page.md").exists()
    assert os.readlink(tenant.path / "mkdocs/docs/current.md") == "index.md"
    assert (tenant.path / ".env").read_bytes() == CONFIG_FILES[".env"]
    # What the backup does not hold is left alone; nothing of the restore is left behind.
    assert (tenant.path / "notes.txt").read_bytes().startswith(b"edited after the backup")
    assert not list(tenant.path.glob(".ccp-restore-*"))
    # The container was recreated onto the restored directory, and serves the backed-up content.
    assert served(tenant.port, "/docs/docs/index.md") == MKDOCS_FILES["mkdocs/docs/index.md"]
    assert served(tenant.port, "/docs/docs/new-page.md") is None
    # The row is final a moment before the worker releases the lock (run_operation's finally).
    wait_for(lambda: not InstanceLock.objects.filter(instance=tenant.instance).exists(), what="the lock's release")
    assert "checking the restored files in place" in restore.log


def test_a_corrupted_backup_is_not_restored_and_the_node_is_untouched(make_tenant, backup_root):
    tenant = make_tenant()
    backup = take_backup(tenant.instance)
    vandalise(tenant.path)
    edited = local_sums(tenant.path, ["mkdocs", ".env"])
    archive = backup_root / backup.location / "mkdocs.tar.gz"
    data = bytearray(archive.read_bytes())
    data[100] ^= 0xFF
    archive.write_bytes(bytes(data))

    restore = backup_restore_request(backup=backup, enqueue=False)
    assert backup_restore_run(restore_id=restore.pk) == RestoreStatus.FAILED
    restore.refresh_from_db()
    assert "mkdocs.tar.gz is corrupted" in restore.error and "nothing was changed" in restore.error
    assert local_sums(tenant.path, ["mkdocs", ".env"]) == edited
    assert not list(tenant.path.glob(".ccp-restore-*"))
    backup.refresh_from_db()
    assert backup.verify_ok is False  # the failed check is recorded on the backup too
    assert not InstanceLock.objects.filter(instance=tenant.instance).exists()


def test_a_restore_of_an_instance_that_is_busy_is_refused(make_tenant, backup_root):
    tenant = make_tenant()
    backup = take_backup(tenant.instance)
    backup_request(instance=tenant.instance, enqueue=False)
    with pytest.raises(Conflict):
        backup_restore_request(backup=backup, enqueue=False)
    assert not Restore.objects.exists()
