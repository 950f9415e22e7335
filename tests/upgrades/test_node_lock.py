"""The second fence, on the node: `<install_dir>/.ccp/lock` (an atomic mkdir, its holder inside) is held
while an upgrade changes the tenant; an upgrade that finds another holder refuses and names it; the lock
a dead worker left is broken by the reconciler only, with what it found as evidence."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from instances.operations.models import InstanceLock
from instances.operations.node_lock import holder_of
from instances.operations.reconcile import reconcile_stale_locks
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.models import Upgrade
from upgrades.services import upgrade_request

from .helpers import quick, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def _hold(tenant, text: str) -> None:
    """Make the node lock as another runner would, as the node account, over SSH."""
    driver = tenant.driver()
    driver.run(["mkdir", "-p", "-m", "0700", "--", f"{tenant.path}/.ccp/lock"], check=True)
    driver.write_file(f"{tenant.path}/.ccp/lock/holder", text.encode(), mode=0o600)


def test_the_upgrade_holds_the_node_lock_while_it_changes_the_tenant_and_releases_it(
    make_tenant, celery_worker_thread, after_up
):
    tenant = make_tenant()
    seen = {}
    after_up(lambda ctx: seen.update(holder=(tenant.path / ".ccp/lock/holder").read_text()))

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert seen["holder"].startswith(holder_of("upgrade", upgrade.pk)) and "\nworker=" in seen["holder"]
    assert not (tenant.path / ".ccp/lock").exists()


def test_an_upgrade_that_finds_another_holder_on_the_node_refuses_naming_it(make_tenant, celery_worker_thread):
    tenant = make_tenant()
    env_before, ids_before = tenant.env(), tenant.container_ids()
    _hold(tenant, "operation=restore #4242\nworker=other-panel:77\nsince=2026-12-05T08:00:00Z\n")

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.FAILED
    assert upgrade.error.startswith(f"The tenant in {tenant.path} is busy on its node: {tenant.path}/.ccp/lock is ")
    assert "held by restore #4242 (worker other-panel:77, since 2026-12-05T08:00:00Z). Nothing was changed." in (
        upgrade.error
    )
    assert tenant.env() == env_before and tenant.container_ids() == ids_before
    assert (tenant.path / ".ccp/lock/holder").read_text().startswith("operation=restore #4242")  # left alone
    assert not InstanceLock.objects.filter(instance=tenant.instance).exists()


def test_the_reconciler_breaks_the_node_lock_a_dead_worker_left_and_records_what_it_found(
    make_tenant, celery_worker_thread
):
    tenant = make_tenant()
    upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2", enqueue=False)
    Upgrade.objects.filter(pk=upgrade.pk).update(status=UpgradeStatus.RUNNING)
    InstanceLock.objects.filter(instance=tenant.instance).update(
        owner="ccp-host-that-died:1", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    _hold(tenant, f"{holder_of('upgrade', upgrade.pk)}worker=ccp-host-that-died:1\nsince=2026-12-05T07:00:00Z\n")

    assert reconcile_stale_locks()

    deadline = time.monotonic() + 60
    while (tenant.path / ".ccp/lock").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (tenant.path / ".ccp/lock").exists()
    result = _task_result("instances.tasks.node_lock_break_task")
    assert f"Broke the node lock {tenant.path}/.ccp/lock of upgrade #{upgrade.pk}" in result
    assert "worker=ccp-host-that-died:1" in result
    # and the next upgrade runs
    assert wait_final(quick(tenant, "v2")).status == UpgradeStatus.SUCCEEDED


def _task_result(name: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = TaskResult.objects.filter(task_name=name, status="SUCCESS").order_by("-date_done").first()
        if found:
            return found.result
        time.sleep(0.2)
    raise AssertionError(f"no result of {name}")
