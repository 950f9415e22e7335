"""The rollout driver's decisions, step by step, on real database rows (no worker: the test ends each
upgrade as its worker would, by its final status and the release of the instance's lock)."""

import pytest
from django.utils import timezone

from instances.operations.choices import OperationKind
from instances.operations.locks import lock_acquire, lock_release
from instances.operations.reconcile import reconcile_stale_locks
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.rollouts.choices import RolloutItemStatus, RolloutStatus
from upgrades.rollouts.driver import rollout_drive
from upgrades.rollouts.models import Rollout
from upgrades.rollouts.services import rollout_cancel, rollout_create, rollout_halt, rollout_resume

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(make_node, make_instance):
    """Four instances, two on each of two nodes."""
    nodes = [make_node(), make_node()]
    return [make_instance(node=node) for node in nodes for _ in range(2)]


def drive(rollout: Rollout) -> Rollout:
    rollout_drive(rollout_id=rollout.pk, token=Rollout.objects.get(pk=rollout.pk).tick_token)
    rollout.refresh_from_db()
    return rollout


def end(item, status: str = UpgradeStatus.SUCCEEDED, error: str = "") -> None:
    item.upgrade.status, item.upgrade.error, item.upgrade.finished_at = status, error, timezone.now()
    item.upgrade.save()
    lock_release(instance_id=item.instance_id, kind=OperationKind.UPGRADE, operation_id=item.upgrade_id)


def items(rollout: Rollout, **filters) -> list:
    return list(rollout.items.select_related("upgrade", "instance").filter(**filters).order_by("position"))


def test_canary_then_waves_then_a_failure_over_the_budget_halts(fleet):
    rollout = rollout_create(instances=fleet, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2", waves="rest")
    assert rollout.status == RolloutStatus.SCHEDULED
    assert [i.wave for i in items(rollout)] == [0, 1, 1, 1]

    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.RUNNING and rollout.started_at
    (canary,) = items(rollout, status=RolloutItemStatus.RUNNING)
    assert canary.wave == 0 and canary.upgrade.target_tag == "v2" and canary.upgrade.status == UpgradeStatus.PENDING
    assert drive(rollout) and len(items(rollout, status=RolloutItemStatus.RUNNING)) == 1  # the wave waits

    end(canary)
    rollout = drive(rollout)
    running = items(rollout, status=RolloutItemStatus.RUNNING)
    # Per-node limit 1: one upgrade on each node; the canary's node has one more waiting.
    assert len(running) == 2 and len({i.instance.node_id for i in running}) == 2
    assert rollout.current_wave == 1

    end(running[0], UpgradeStatus.ROLLED_BACK, "The health check failed.")
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.HALTED
    assert str(running[0].instance) in rollout.reason and "failure budget of 0" in rollout.reason
    (untouched,) = items(rollout, status=RolloutItemStatus.PENDING)
    assert untouched.upgrade is None
    end(items(rollout, status=RolloutItemStatus.RUNNING)[0])  # the one already running finishes
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.HALTED and rollout.finished_at
    assert untouched.instance.upgrades.count() == 0  # nothing touched after the halt

    rollout = rollout_resume(rollout=rollout, image_tag="v3")
    assert rollout.status == RolloutStatus.RUNNING and rollout.image_tag == "v3"
    assert {i.instance_id for i in items(rollout, status=RolloutItemStatus.PENDING)} == {
        running[0].instance_id,
        untouched.instance_id,
    }
    for _ in range(2):  # both on one node, limit 1: one after the other
        rollout = drive(rollout)
        (item,) = items(rollout, status=RolloutItemStatus.RUNNING)
        assert item.upgrade.target_tag == "v3"
        end(item)
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.SUCCEEDED and rollout.finished_at
    assert {i.status for i in items(rollout)} == {RolloutItemStatus.SUCCEEDED}


def test_a_locked_instance_waits_then_fails_naming_the_holder(fleet, settings):
    lock_acquire(instance=fleet[0], kind=OperationKind.BACKUP, operation_id=4242)
    rollout = drive(rollout_create(instances=fleet[:1], mode=UpgradeMode.IMAGE_ONLY, image_tag="v2"))
    (item,) = items(rollout)
    assert item.status == RolloutItemStatus.WAITING and "backup #4242" in item.error
    assert rollout.status == RolloutStatus.RUNNING

    settings.CCP_ROLLOUT_LOCK_WAIT_SECONDS = 0
    rollout = drive(rollout)
    (item,) = items(rollout)
    assert item.status == RolloutItemStatus.FAILED and "Still locked" in item.error and "backup #4242" in item.error
    assert rollout.status == RolloutStatus.HALTED


def test_cancel_starts_nothing_more_and_lets_running_upgrades_finish(fleet):
    rollout = drive(rollout_create(instances=fleet, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2", canary_size=2))
    running = items(rollout, status=RolloutItemStatus.RUNNING)
    assert len(running) == 2

    rollout = rollout_cancel(rollout=rollout)
    assert rollout.status == RolloutStatus.CANCELLED and rollout.finished_at is None
    assert len(items(rollout, status=RolloutItemStatus.SKIPPED)) == 2
    end(running[0])
    end(running[1])
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.CANCELLED and rollout.finished_at
    assert [i.status for i in items(rollout, status__in=["succeeded"])] == ["succeeded", "succeeded"]
    assert sum(i.instance.upgrades.count() for i in items(rollout)) == 2


def test_halt_by_an_operator_and_a_start_time_in_the_future(fleet):
    later = timezone.now() + timezone.timedelta(hours=1)
    rollout = rollout_create(instances=fleet, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2", start_at=later)
    delay = rollout_drive(rollout_id=rollout.pk, token=rollout.tick_token)
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.SCHEDULED and 0 < delay <= 10 and not items(rollout, upgrade__isnull=False)

    rollout = rollout_halt(rollout=rollout)
    assert rollout.status == RolloutStatus.HALTED and "Halted by" in rollout.reason
    assert rollout_drive(rollout_id=rollout.pk, token=rollout.tick_token) is None


def test_a_step_of_an_old_driver_chain_does_nothing(fleet):
    rollout = rollout_create(instances=fleet, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2")
    assert rollout_drive(rollout_id=rollout.pk, token="an-old-chain") is None
    assert not items(rollout, upgrade__isnull=False)


def test_disabled_instances_are_excluded_and_named(fleet):
    fleet[0].status = "disabled"
    fleet[0].save()
    rollout = rollout_create(instances=fleet, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2")
    (excluded,) = items(rollout, status=RolloutItemStatus.EXCLUDED)
    assert excluded.instance_id == fleet[0].pk and "Disabled" in excluded.error


def test_the_reconciler_gives_a_rollout_whose_driver_stopped_a_new_driver(fleet, settings):
    settings.CCP_LOCK_STALE_SECONDS = 5
    rollout = drive(rollout_create(instances=fleet, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2"))
    old_token = rollout.tick_token
    assert not any("Rollout" in line for line in reconcile_stale_locks())  # its driver steps: left alone

    Rollout.objects.filter(pk=rollout.pk).update(driven_at=timezone.now() - timezone.timedelta(seconds=30))
    report = reconcile_stale_locks()

    assert f"Rollout #{rollout.pk}: its driver stopped taking steps; a new driver continues it." in report
    rollout.refresh_from_db()
    assert rollout.tick_token != old_token
    assert rollout_drive(rollout_id=rollout.pk, token=old_token) is None  # the old chain's step stops there
    assert rollout_drive(rollout_id=rollout.pk, token=rollout.tick_token) is not None
