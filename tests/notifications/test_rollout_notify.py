"""A rollout that halts tells the webhook exactly once — with its link, the failed instance and the
reason — and tells it again when, resumed, it finishes (a real worker and a real receiver)."""

import time

import pytest
from django.utils import timezone

from instances.notifications.choices import NotificationEvent
from instances.operations.choices import OperationKind
from instances.operations.locks import lock_release
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.rollouts.choices import RolloutItemStatus, RolloutStatus
from upgrades.rollouts.driver import rollout_drive
from upgrades.rollouts.models import Rollout
from upgrades.rollouts.services import rollout_create, rollout_resume

from .receivers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def drive(rollout: Rollout) -> Rollout:
    rollout_drive(rollout_id=rollout.pk, token=Rollout.objects.get(pk=rollout.pk).tick_token)
    rollout.refresh_from_db()
    return rollout


def end_running(rollout: Rollout, status: str, error: str = "") -> list:
    """End the rollout's running upgrades as their worker would: final status, then the lock released."""
    ended = []
    for item in rollout.items.select_related("upgrade", "instance").filter(status=RolloutItemStatus.RUNNING):
        item.upgrade.status, item.upgrade.error, item.upgrade.finished_at = status, error, timezone.now()
        item.upgrade.save()
        lock_release(instance_id=item.instance_id, kind=OperationKind.UPGRADE, operation_id=item.upgrade_id)
        ended.append(item)
    return ended


def test_a_halted_rollout_notifies_once_with_its_link_the_failed_instance_and_the_reason(
    celery_worker_thread, webhook, make_target, make_node, make_instance
):
    make_target(
        webhook.url("/rollouts"),
        events=[NotificationEvent.ROLLOUT_HALTED, NotificationEvent.ROLLOUT_FINISHED],
        name="ops",
    )
    node = make_node()
    instances = [make_instance(node=node) for _ in range(3)]
    rollout = rollout_create(instances=instances, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2", waves="rest")

    rollout = drive(rollout)  # the canary starts
    (canary,) = end_running(rollout, UpgradeStatus.ROLLED_BACK, "The health check of http://web/ failed.")
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.HALTED
    for _ in range(2):  # later steps of the driver and a second look: no second message
        rollout = drive(rollout)

    wait_for(lambda: webhook.received, what="the halt message")
    time.sleep(1.5)  # a duplicate would have arrived by now
    assert len(webhook.received) == 1
    body = webhook.received[0][1]
    assert body["title"] == f"Rollout #{rollout.pk} to image tag v2 halted"
    assert f"/admin/upgrades/rollout/{rollout.pk}/change/" in body["message"]
    assert str(canary.instance) in body["message"] and "The health check of http://web/ failed." in body["message"]
    assert "0 succeeded, 1 failed" in body["message"]

    rollout = rollout_resume(rollout=rollout, image_tag="v3")
    for _ in range(len(instances)):  # one node, limit 1: one after the other
        rollout = drive(rollout)
        end_running(rollout, UpgradeStatus.SUCCEEDED)
    rollout = drive(rollout)
    assert rollout.status == RolloutStatus.SUCCEEDED
    wait_for(lambda: len(webhook.received) == 2, what="the finished message")
    title = webhook.received[1][1]["title"]
    assert title == f"Rollout #{rollout.pk} to image tag v3 succeeded"
    assert "3 succeeded, 0 failed" in webhook.received[1][1]["message"]
