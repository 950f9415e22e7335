"""An upgrade that rolls back is notified once, with its link and reason, by a real worker to a real
webhook; a target whose receiver is down changes nothing about the upgrade."""

import time

import pytest

from instances.notifications.choices import DeliveryStatus, NotificationEvent
from instances.notifications.models import NotificationDelivery, NotificationTarget
from instances.notifications.services import notification_target_save
from tests.notifications.receivers import Webhook, free_port, wait_for
from upgrades.choices import UpgradeStatus

from .helpers import quick, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hook():
    receiver = Webhook(port=free_port()).start()
    yield receiver
    receiver.stop()


def target(name: str, url: str, events: list[str]) -> NotificationTarget:
    return notification_target_save(target=NotificationTarget(name=name, events=events), url=url)


def test_a_rolled_back_upgrade_is_notified_once_and_a_dead_receiver_does_not_matter(
    make_tenant, celery_worker_thread, hook, settings
):
    settings.CCP_NOTIFY_MAX_ATTEMPTS, settings.CCP_NOTIFY_RETRY_SECONDS = 2, 0.2
    settings.CCP_PUBLIC_URL = "https://ccp.example.org"
    events = [NotificationEvent.UPGRADE_FAILED, NotificationEvent.UPGRADE_ROLLED_BACK]
    target("hook", hook.url("/upgrades"), events)
    target("down", f"json://127.0.0.1:{free_port()}/down", events)
    tenant = make_tenant(tag="v2")

    upgrade = wait_final(quick(tenant, "broken"))

    assert upgrade.status == UpgradeStatus.ROLLED_BACK, upgrade.error
    assert tenant.images() == {"v2"} and tenant.all_healthy()
    wait_for(lambda: hook.received, what="the rolled-back message")
    down = wait_for(
        lambda: NotificationDelivery.objects.filter(target__name="down", status=DeliveryStatus.FAILED).first(),
        what="the dead receiver's delivery to give up",
    )
    time.sleep(1)
    assert len(hook.received) == 1
    body = hook.received[0][1]
    assert body["title"] == f"{upgrade.kind_display} #{upgrade.pk} of {tenant.instance} rolled back"
    assert f"https://ccp.example.org/admin/upgrades/upgrade/{upgrade.pk}/change/" in body["message"]
    assert "docker compose up did not bring the stack up healthy" in body["message"]
    assert down.attempts == 2 and down.last_error
    upgrade.refresh_from_db()
    assert upgrade.status == UpgradeStatus.ROLLED_BACK
