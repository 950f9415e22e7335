"""Interruptions end in a known state (issue 10, items 8 and 9)."""

import io
import tarfile
import time
from pathlib import Path

import pytest
from django.conf import settings

from instances.operations.models import InstanceLock
from instances.preview import instance_preview
from upgrades.choices import StepStatus, UpgradeMode, UpgradeStatus
from upgrades.services import upgrade_request

from .handmade import handwritten_env
from .helpers import install_script, kill_group, registry_id, start_worker_process, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def wait_for_step_start(upgrade, name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if upgrade.steps.filter(name=name).exists():
            return
        time.sleep(0.02)
    raise AssertionError(f"step {name!r} never started")


@pytest.mark.timeout(300)
def test_8_a_quick_upgrade_whose_worker_is_killed_is_rolled_back_from_the_copies_on_the_node(
    make_tenant, worker_process_env, docker_engine, tmp_path
):
    tenant = make_tenant(registered=True)
    env_before = handwritten_env(tenant)
    v1 = registry_id(docker_engine, "v1")
    log = tmp_path / "worker.log"
    first = start_worker_process(worker_process_env, log)
    second = None
    try:
        upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2")
        wait_for_step_start(upgrade, "pull images")  # .env already says v2: the node is half-way
        kill_group(first)  # SIGKILL, as the OOM killer or a restarting agent would
        assert b"IMAGE_TAG=v2  # pinned by ops" in tenant.env()
        second = start_worker_process(worker_process_env, log)  # its start-up runs the reconciler
        upgrade = wait_final(upgrade, timeout=180)
    finally:
        for process in (first, second):
            if process and process.poll() is None:
                kill_group(process)

    assert upgrade.status == UpgradeStatus.ROLLED_BACK_INTERRUPTED, f"{upgrade.error}\n{log.read_text()[-3000:]}"
    assert upgrade.get_status_display() == "Rolled back (interrupted)"
    assert tenant.env() == env_before  # from the copy kept in .ccp/upgrades/<id>/ on the node
    assert set(tenant.running_image_ids().values()) == {v1} and tenant.all_healthy()
    assert tenant.served_versions() == {"v1"}
    steps = list(upgrade.steps.order_by("position"))
    assert all(s.status != StepStatus.RUNNING and s.finished_at is not None for s in steps)
    interrupted = [s for s in steps if s.status == StepStatus.INTERRUPTED]
    assert len(interrupted) == 1 and "interrupted" in interrupted[0].output
    assert [s.name for s in steps if s.is_rollback] == [
        "restore .env",
        "start previous containers (up -d --wait)",
        "health check after rollback",
        "verify running images after rollback",
    ]
    assert all(s.status == StepStatus.SUCCEEDED for s in steps if s.is_rollback)
    assert not InstanceLock.objects.filter(instance=tenant.instance).exists()
    tenant.instance.refresh_from_db()
    assert tenant.instance.attention == "" and tenant.instance.observed_version == "v1"


@pytest.mark.timeout(300)
def test_9_a_failed_full_upgrade_names_the_backup_to_restore_from(make_tenant, celery_worker_thread):
    tenant = make_tenant()
    env_before = tenant.env()
    install_script(
        tenant,
        "#!/bin/sh\nset -eu\nsed -i 's/^IMAGE_TAG=.*/IMAGE_TAG=v9/' .env\necho 'migration 0042 failed' >&2\nexit 4\n",
    )

    upgrade = wait_final(upgrade_request(instance=tenant.instance, mode=UpgradeMode.FULL, image_tag="v2"))

    assert upgrade.status == UpgradeStatus.FAILED
    assert b"IMAGE_TAG=v9" in tenant.env()  # the script changed the node before it failed
    backup = tenant.instance.backups.get(pk=upgrade.state["backup_id"])
    tenant.instance.refresh_from_db()
    attention = tenant.instance.attention
    assert f"pre-upgrade backup #{backup.pk} ({backup.location})" in attention
    assert f"/api/v1/backups/{backup.pk}/restore/" in attention
    # and that backup really holds the .env as it was before the script ran
    folder = Path(settings.BACKUP_ROOT) / backup.location
    with tarfile.open(folder / "config-files.tar.gz") as archive:
        kept = archive.extractfile(archive.getmember(".env")).read()
    assert kept == env_before and io.BytesIO(kept).read() != tenant.env()


@pytest.mark.timeout(300)
def test_8_a_release_upgrade_whose_worker_is_killed_puts_every_file_back(
    make_tenant, testbed_release, worker_process_env, docker_engine, tmp_path
):
    tenant = make_tenant()
    v2 = testbed_release("v2.0.0", "v2")
    managed = [tenant.path / name for name in (".env", "docker-compose.yml", "configs/app.conf")]
    (tenant.path / "configs" / "app.conf").write_bytes(b"# tuned on the node\n")  # the release overwrites it
    before = {path: path.read_bytes() for path in managed}
    v1 = registry_id(docker_engine, "v1")
    log = tmp_path / "worker.log"
    first = start_worker_process(worker_process_env, log)
    second = None
    try:
        preview = instance_preview(instance=tenant.instance, release=v2)
        upgrade = upgrade_request(
            instance=tenant.instance, mode=UpgradeMode.RELEASE, release=v2, preview_hash=preview.preview_hash
        )
        wait_for_step_start(upgrade, "pull images")  # every rendered file is written by now
        kill_group(first)
        assert b"IMAGE_TAG=v2" in (tenant.path / ".env").read_bytes()
        second = start_worker_process(worker_process_env, log)
        upgrade = wait_final(upgrade, timeout=180)
    finally:
        for process in (first, second):
            if process and process.poll() is None:
                kill_group(process)

    assert upgrade.status == UpgradeStatus.ROLLED_BACK_INTERRUPTED, f"{upgrade.error}\n{log.read_text()[-3000:]}"
    assert {path: path.read_bytes() for path in managed} == before
    assert set(tenant.running_image_ids().values()) == {v1} and tenant.all_healthy()
    assert all(s.status != StepStatus.RUNNING and s.finished_at for s in upgrade.steps.all())
    assert upgrade.steps.filter(status=StepStatus.INTERRUPTED).count() == 1
