"""notify() through a real Celery worker to real receivers on loopback: a JSON webhook and an SMTP
server. Exactly one message per event, failures recorded on the delivery, the URL never shown."""

import logging
import time
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection, transaction
from django.utils import timezone

from ccp.errors import CCPError
from instances.attention import attention_raise
from instances.backups.missed import backups_missed_check
from instances.backups.schedule import ensure_backup_schedule
from instances.backups.services import backup_request, backup_run
from instances.choices import BackupLabel, BackupStatus
from instances.drivers import close_all
from instances.drivers.errors import HostKeyMismatch
from instances.models import Attention, Backup, Instance
from instances.node_checks import node_check
from instances.notifications.choices import DeliveryStatus, NotificationEvent
from instances.notifications.models import NotificationDelivery, NotificationTarget
from instances.notifications.services import (
    notification_deliver,
    notification_prune,
    notification_resend_stale,
    notify,
)
from instances.notifications.tasks import notification_resend_stale_task

from .receivers import free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "tok-9f8e7d6c5b4a"


def unreachable_instance(make_node, make_instance) -> Instance:
    """An SSH node without a key: every operation on it fails before anything is sent anywhere."""
    return make_instance(node=make_node(driver="ssh", address="127.0.0.1", ssh_port=1))


def settled(seconds: float = 1.5) -> None:
    """Give a duplicate message the time to arrive, if there were one."""
    time.sleep(seconds)


def test_a_failed_backup_reaches_the_webhook_and_the_mailbox_exactly_once(
    celery_worker_thread, webhook, smtp_server, make_target, make_node, make_instance
):
    make_target(webhook.url(f"/ccp/{TOKEN}"), events=[NotificationEvent.BACKUP_FAILED], name="hook")
    make_target(smtp_server.url(), events=[NotificationEvent.BACKUP_FAILED], name="mail")
    make_target(webhook.url("/not-this-one"), events=[NotificationEvent.UPGRADE_FAILED], name="upgrades only")
    instance = unreachable_instance(make_node, make_instance)

    backup = backup_request(instance=instance, enqueue=False)
    assert backup_run(backup_id=backup.pk) == BackupStatus.FAILED
    assert backup_run(backup_id=backup.pk) == BackupStatus.FAILED  # the task delivered twice: no second message

    wait_for(lambda: webhook.received and smtp_server.messages, what="the webhook and the e-mail")
    settled()
    assert [path for path, _ in webhook.received] == [f"/ccp/{TOKEN}"]
    body = webhook.received[0][1]
    assert body["title"] == f"Manual backup #{backup.pk} of {instance} failed"
    assert f"Instance: {instance.slug}" in body["message"] and "Event: backup.failed" in body["message"]
    assert f"/admin/instances/backup/{backup.pk}/change/" in body["message"]
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail.rcpt_tos == ["ops@example.org"] and f"backup #{backup.pk}".encode() in mail.content
    deliveries = NotificationDelivery.objects.filter(event=NotificationEvent.BACKUP_FAILED)
    assert sorted(deliveries.values_list("target__name", "status", "attempts")) == [
        ("hook", DeliveryStatus.SENT, 1),
        ("mail", DeliveryStatus.SENT, 1),
    ]


def test_a_receiver_that_is_down_fails_the_delivery_visibly_never_the_operation(
    celery_worker_thread, quick_retries, make_target, make_node, make_instance, client, superuser, caplog
):
    caplog.set_level(logging.DEBUG)
    down = f"json://127.0.0.1:{free_port()}/hook/{TOKEN}"
    make_target(down, events=[NotificationEvent.INSTANCE_ATTENTION], name="down")
    instance = make_instance()

    with transaction.atomic():  # the operation that raises attention, in its own transaction
        first = attention_raise(instance=instance, reason="the rollback failed too")
        attention_raise(instance=instance, reason="a second reason while the first is open")
    assert Attention.objects.filter(instance=instance, resolved_at__isnull=True).count() == 2

    delivery = wait_for(
        lambda: NotificationDelivery.objects.filter(status=DeliveryStatus.FAILED).first(), what="the final failure"
    )
    assert NotificationDelivery.objects.count() == 1  # newly needing attention: one message, not two
    assert delivery.attempts == 2 and delivery.dedupe_key == f"attention-{first.pk}"
    assert "Connection" in delivery.last_error and TOKEN not in delivery.last_error

    client.force_login(superuser)
    page = client.get("/admin/instances/notificationdelivery/").content.decode()
    assert "Failed" in page and "Connection" in page
    detail = client.get(f"/admin/instances/notificationdelivery/{delivery.pk}/change/").content.decode()
    assert "the rollback failed too" in detail and TOKEN not in detail
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


def test_the_url_is_stored_encrypted_and_never_shown(client, superuser, viewer, webhook):
    secret_url = webhook.url(f"/ccp/{TOKEN}")
    client.force_login(superuser)
    response = client.post(
        "/admin/instances/notificationtarget/add/",
        {"name": "ops hook", "url": secret_url, "events": [NotificationEvent.BACKUP_FAILED], "enabled": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    target = NotificationTarget.objects.get(name="ops hook")
    with connection.cursor() as cursor:
        cursor.execute("SELECT url_encrypted, service FROM instances_notificationtarget WHERE id = %s", [target.pk])
        stored, service = cursor.fetchone()
    assert TOKEN not in stored and target.get_url() == secret_url and service == "json"
    assert target.events == [NotificationEvent.BACKUP_FAILED]

    for user in (superuser, viewer):
        client.force_login(user)
        for page in (
            "/admin/instances/notificationtarget/",
            f"/admin/instances/notificationtarget/{target.pk}/change/",
        ):
            html = client.get(page).content.decode()
            assert "ops hook" in html and TOKEN not in html and str(webhook.port) not in html, (user, page)

    client.force_login(superuser)
    kept = client.post(
        f"/admin/instances/notificationtarget/{target.pk}/change/",
        {"name": "ops hook", "url": "", "events": [NotificationEvent.BACKUP_MISSED], "enabled": "on"},
    )
    assert kept.status_code == 302
    target.refresh_from_db()
    assert target.get_url() == secret_url and target.events == [NotificationEvent.BACKUP_MISSED]

    refused = client.post(
        "/admin/instances/notificationtarget/add/", {"name": "bad", "url": "nonsense://", "events": []}
    ).content.decode()
    assert "apprise does not understand this URL" in refused and not NotificationTarget.objects.filter(name="bad")


def test_send_test_from_the_admin_reaches_the_webhook(celery_worker_thread, client, superuser, make_target, webhook):
    target = make_target(webhook.url("/test"), events=[], name="quiet")
    client.force_login(superuser)
    response = client.post(
        "/admin/instances/notificationtarget/",
        {"action": "send_test", "_selected_action": [target.pk]},
        follow=True,
    )
    assert "Test message to quiet queued" in response.content.decode()
    wait_for(lambda: webhook.received, what="the test message")
    settled(0.5)
    assert [body["title"] for body in webhook.messages()] == ["CCP test message to quiet"]
    assert NotificationDelivery.objects.get(target=target).status == DeliveryStatus.SENT


def test_a_missed_scheduled_backup_is_notified_once_per_gap(make_target, make_instance, settings):
    ensure_backup_schedule(django_apps)  # a transactional test may have flushed the migration's row
    settings.CCP_BACKUP_MISSED_HOURS = 26
    make_target(f"json://127.0.0.1:{free_port()}/missed", events=[NotificationEvent.BACKUP_MISSED])
    long_ago = timezone.now() - timedelta(days=3)
    overdue, fresh = make_instance(), make_instance()
    never_backed_up = make_instance(backup_enabled=False)
    Instance.objects.filter(pk__in=[overdue.pk, fresh.pk, never_backed_up.pk]).update(created_at=long_ago)
    Backup.objects.create(instance=fresh, label=BackupLabel.SCHEDULED, status=BackupStatus.SUCCEEDED)

    assert backups_missed_check() == [f"{overdue}: it has no complete backup at all"]
    assert backups_missed_check() == [f"{overdue}: it has no complete backup at all"]  # still overdue
    assert list(NotificationDelivery.objects.values_list("instance__slug", flat=True)) == [overdue.slug]

    old = Backup.objects.create(instance=overdue, label=BackupLabel.SCHEDULED, status=BackupStatus.SUCCEEDED)
    assert backups_missed_check() == []
    Backup.objects.filter(pk=old.pk).update(created_at=long_ago + timedelta(days=1))
    backups_missed_check()  # a new gap since that backup: one more message
    assert NotificationDelivery.objects.filter(instance=overdue).count() == 2


def test_notify_never_fails_its_caller_and_a_rolled_back_operation_notifies_nobody(make_target):
    make_target(f"json://127.0.0.1:{free_port()}/x", events=[NotificationEvent.BACKUP_FAILED])
    assert notify("no.such.event", title="t", body="b") == []
    with pytest.raises(RuntimeError), transaction.atomic():
        assert len(notify(NotificationEvent.BACKUP_FAILED, title="t", body="b")) == 1
        raise RuntimeError("the operation failed and rolled back")
    assert not NotificationDelivery.objects.exists()
    assert len(notify(NotificationEvent.BACKUP_FAILED, title="t", body="b", dedupe_key="k")) == 1
    assert notify(NotificationEvent.BACKUP_FAILED, title="t", body="b", dedupe_key="k") == []


@pytest.mark.testbed
def test_a_changed_host_key_is_notified_once_per_presented_key(make_node, make_target, ssh_node_factory, docker_engine):
    make_target(f"json://127.0.0.1:{free_port()}/keys", events=[NotificationEvent.NODE_HOST_KEY_CHANGED])
    sshd = ssh_node_factory()
    node = make_node(**sshd.node_fields())
    try:
        node_check(node=node)
        close_all()
        sshd.restart_with_new_host_key()
        for _ in range(2):  # every later use of the node is refused again: still one message
            with pytest.raises(HostKeyMismatch):
                node_check(node=node)
    finally:
        close_all()
    delivery = NotificationDelivery.objects.get(event=NotificationEvent.NODE_HOST_KEY_CHANGED)
    assert delivery.title == f"The host key of node {node.name} has changed"
    assert sshd.host_key_fingerprint in delivery.body and "re-pin" in delivery.body
    assert delivery.dedupe_key == f"host-key-{node.pk}-{sshd.host_key_fingerprint}"


def test_a_delivery_whose_task_was_lost_is_queued_again_by_the_sweep(celery_worker_thread, webhook, make_target):
    target = make_target(webhook.url("/late"), events=[NotificationEvent.BACKUP_FAILED])
    lost = NotificationDelivery.objects.create(target=target, event=NotificationEvent.BACKUP_FAILED, title="lost")
    recent = NotificationDelivery.objects.create(target=target, event=NotificationEvent.BACKUP_FAILED, title="recent")
    NotificationDelivery.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=3))

    assert notification_resend_stale() == [lost.pk]  # the recent one may still be on its way
    wait_for(
        lambda: NotificationDelivery.objects.filter(pk=lost.pk, status=DeliveryStatus.SENT).exists(),
        what="the lost delivery",
    )
    assert [body["title"] for body in webhook.messages()] == ["lost"]
    assert notification_deliver(delivery_id=lost.pk) == DeliveryStatus.SENT  # sent already: not again
    settled(0.5)
    assert len(webhook.received) == 1 and notification_resend_stale() == []
    assert NotificationDelivery.objects.get(pk=recent.pk).status == DeliveryStatus.PENDING


def test_the_sweep_deletes_old_finished_deliveries_and_keeps_the_rest(make_target, settings):
    """Sent and failed deliveries older than CCP_NOTIFY_KEEP_DAYS go; recent ones and those still
    waiting stay; 0 keeps everything; the beat task runs the pruning."""
    target = make_target("json://127.0.0.1:9/", events=[NotificationEvent.BACKUP_FAILED])
    old, recent = timezone.now() - timedelta(days=91), timezone.now() - timedelta(days=89)
    rows = {}
    for name, status, when in [
        ("old sent", DeliveryStatus.SENT, old),
        ("old failed", DeliveryStatus.FAILED, old),
        ("old retrying", DeliveryStatus.RETRYING, old),
        ("recent sent", DeliveryStatus.SENT, recent),
    ]:
        row = NotificationDelivery.objects.create(
            target=target, event=NotificationEvent.BACKUP_FAILED, title=name, status=status
        )
        NotificationDelivery.objects.filter(pk=row.pk).update(created_at=when, last_attempt_at=timezone.now())
        rows[name] = row.pk

    settings.CCP_NOTIFY_KEEP_DAYS = 0
    assert notification_prune() == 0 and NotificationDelivery.objects.count() == 4
    settings.CCP_NOTIFY_KEEP_DAYS = 90
    notification_resend_stale_task()
    assert sorted(NotificationDelivery.objects.values_list("title", flat=True)) == ["old retrying", "recent sent"]


def test_djangomail_targets_go_through_djangos_smtp_backend(
    celery_worker_thread, smtp_server, make_target, make_instance, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # pytest-django sets locmem
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", smtp_server.port, False
    settings.DEFAULT_FROM_EMAIL = "ccp@example.org"
    target = make_target(
        "djangomail://ops@example.org,oncall@example.org", events=[NotificationEvent.INSTANCE_ATTENTION]
    )
    assert target.service == "djangomail"
    with pytest.raises(CCPError, match="e-mail addresses"):
        make_target("djangomail://not-an-address", name="bad")
    instance = make_instance()

    attention_raise(instance=instance, reason="an interrupted restore")

    wait_for(lambda: smtp_server.messages, what="the e-mail")
    settled()
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail.mail_from == "ccp@example.org" and mail.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    assert f"Subject: {instance} needs attention".encode() in mail.content
    assert b"an interrupted restore" in mail.content
    assert NotificationDelivery.objects.get(target=target).status == DeliveryStatus.SENT
