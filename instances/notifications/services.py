"""Writes for notifications: `notify` (the one entry point), delivering one row, saving a target, the test.

`notify` is called from inside operations (an upgrade's finish, a failed backup, a new attention
record, a refused host key, the drift report, rollouts). It writes a delivery row per target that wants
the event, in a savepoint of the caller's transaction, and queues the sending task once that transaction
commits: a rolled-back operation notifies nobody, and nothing here can make the operation fail.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ccp.audit import audit_log
from ccp.celery import app
from ccp.errors import CCPError

from .choices import DeliveryStatus, NotificationEvent
from .delivery import send, url_problem
from .models import NotificationDelivery, NotificationTarget

log = logging.getLogger(__name__)

DELIVER_TASK = "instances.notifications.tasks.notification_deliver_task"
# Longer than the longest retry delay (an hour): a delivery untried this long has lost its task.
STALE_DELIVERY = timedelta(hours=2)


def notify(event: str, *, title: str, body: str, url: str = "", instance=None, dedupe_key: str = "") -> list[int]:
    """Tell every enabled target that wants `event`. Returns the ids of the deliveries queued.

    `url`: a link to the page about it (a path is made absolute with CCP_PUBLIC_URL). `dedupe_key` names
    what the message is about (e.g. "upgrade-12"): a second notify of the same event and key sends
    nothing, so an operation that is retried or recovered does not notify twice. Never raises."""
    try:
        with transaction.atomic():
            return _notify(event, title=title, body=body, url=url, instance=instance, dedupe_key=dedupe_key)
    except Exception:  # noqa: BLE001 - a notification must never fail the operation that triggered it
        log.exception("Could not record the %s notification %r", event, title)
        return []


def _notify(event: str, *, title: str, body: str, url: str, instance, dedupe_key: str) -> list[int]:
    if event not in NotificationEvent.values:
        raise ValueError(f"Unknown notification event {event!r}.")
    link = absolute_link(url)
    queued = []
    for target in NotificationTarget.objects.filter(enabled=True):
        if not target.wants(event):
            continue
        fields = {"title": title[:300], "body": body, "link": link, "instance": instance}
        if dedupe_key:
            try:
                with transaction.atomic():
                    delivery, created = NotificationDelivery.objects.get_or_create(
                        target=target, event=event, dedupe_key=dedupe_key[:200], defaults=fields
                    )
            except IntegrityError:  # a concurrent notify of the same subject won
                continue
            if not created:
                continue
        else:
            delivery = NotificationDelivery.objects.create(target=target, event=event, **fields)
        _enqueue_on_commit(delivery.pk)
        queued.append(delivery.pk)
    return queued


def absolute_link(url: str) -> str:
    if url.startswith("/") and settings.CCP_PUBLIC_URL:
        return settings.CCP_PUBLIC_URL.rstrip("/") + url
    return url


def _enqueue_on_commit(delivery_id: int) -> None:
    """As instances.operations.enqueue_on_commit, but robust: a broker that is down is recorded on the
    delivery instead of raising into the commit of the operation that notified (the stale sweep queues
    it again later)."""

    def send_task() -> None:
        try:
            app.send_task(DELIVER_TASK, args=[delivery_id])
        except Exception as exc:  # noqa: BLE001
            log.warning("Could not queue notification delivery #%s: %s", delivery_id, exc)
            NotificationDelivery.objects.filter(pk=delivery_id).update(
                last_error=f"Could not queue the delivery (queued again within {STALE_DELIVERY}): {exc}"
            )

    transaction.on_commit(send_task, robust=True)


def notification_deliver(*, delivery_id: int) -> str:
    """One attempt to send a delivery (the task calls this, and again on each retry). Returns the new
    status: sent, retrying (the task schedules the next attempt) or failed (attempts used up)."""
    delivery = NotificationDelivery.objects.select_related("target", "instance").filter(pk=delivery_id).first()
    if delivery is None:
        return "missing"
    if delivery.status not in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING):
        return delivery.status  # sent or given up already: a duplicate task sends nothing
    attempts = delivery.attempts + 1
    # One sender per attempt: the row is claimed (sending) before anything goes out, so a duplicate
    # task, or the stale sweep meeting a late retry, finds it taken and sends nothing.
    if not NotificationDelivery.objects.filter(
        pk=delivery.pk, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
    ).update(status=DeliveryStatus.SENDING, attempts=attempts, last_attempt_at=timezone.now()):
        return "taken"
    try:
        error = send(delivery.target.get_url(), title=delivery.title, body=message_body(delivery))
    except CCPError as exc:  # the URL cannot be decrypted (a key was removed)
        error = exc.message
    now = timezone.now()
    if not error:
        status = DeliveryStatus.SENT
    else:
        status = DeliveryStatus.RETRYING if attempts < settings.CCP_NOTIFY_MAX_ATTEMPTS else DeliveryStatus.FAILED
    NotificationDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
        status=status,
        last_attempt_at=now,
        last_error=error,
        sent_at=now if status == DeliveryStatus.SENT else None,
    )
    if error:
        log.warning(
            "Notification #%s (%s) to target %s, attempt %s: %s",
            delivery.pk,
            delivery.event,
            delivery.target,
            attempts,
            error,
        )
    return status


def notification_resend_stale() -> list[int]:
    """Queue again the deliveries still waiting long after they should have been tried: their task was
    lost with a worker (also one killed while sending), or the broker was down when it was queued.
    Beat runs this every 10 minutes."""
    cutoff = timezone.now() - STALE_DELIVERY
    waiting = [DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.SENDING]
    stale = list(
        NotificationDelivery.objects.filter(status__in=waiting, created_at__lt=cutoff)
        .filter(Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lt=cutoff))
        .values_list("pk", flat=True)[:500]
    )
    NotificationDelivery.objects.filter(pk__in=stale, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.RETRYING
    )
    for delivery_id in stale:
        app.send_task(DELIVER_TASK, args=[delivery_id])
    return stale


def notification_prune() -> int:
    """Delete the deliveries that are done (sent or failed) and older than CCP_NOTIFY_KEEP_DAYS, so the
    admin's list stays a recent history rather than a table that only grows; waiting ones are kept.
    Once a delivery is gone, the same event about the same subject may be sent again. Returns how many."""
    if settings.CCP_NOTIFY_KEEP_DAYS <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=settings.CCP_NOTIFY_KEEP_DAYS)
    deleted, _ = NotificationDelivery.objects.filter(
        status__in=[DeliveryStatus.SENT, DeliveryStatus.FAILED], created_at__lt=cutoff
    ).delete()
    return deleted


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt: CCP_NOTIFY_RETRY_SECONDS, doubled after each failure, at most an hour."""
    return min(3600.0, settings.CCP_NOTIFY_RETRY_SECONDS * 2 ** max(0, attempts - 1))


def message_body(delivery: NotificationDelivery) -> str:
    lines = [delivery.body.strip()]
    if delivery.instance_id:
        lines.append(f"Instance: {delivery.instance.slug if delivery.instance else delivery.instance_id}")
    if delivery.link:
        lines.append(f"Link: {delivery.link}")
    lines.append(f"Event: {delivery.event}")
    return "\n".join(line for line in lines if line)


@transaction.atomic
def notification_target_save(*, target: NotificationTarget, url: str | None = None, user=None) -> NotificationTarget:
    """Create or change a target; `url` (when given) is checked with apprise and stored encrypted."""
    if url:
        problem = url_problem(url)
        if problem:
            raise CCPError(problem)
        target.set_url(url)
    elif not target.url_encrypted:
        raise CCPError("A new target needs its apprise URL.")
    created = target.pk is None
    target.events = [event for event in target.events or [] if event in NotificationEvent.values]
    target.save()
    audit_log(
        user=user,
        obj=target,
        action="added" if created else "changed",
        message=f"{'Added' if created else 'Changed'} notification target {target} ({target.service})"
        + (", new URL" if url and not created else "")
        + ".",
    )
    return target


@transaction.atomic
def notification_target_test(*, target: NotificationTarget, user=None) -> NotificationDelivery:
    """Queue a test message to one target (enabled or not, whatever events it wants)."""
    who = getattr(user, "username", "") or "CCP"
    delivery = NotificationDelivery.objects.create(
        target=target,
        event=NotificationEvent.TEST,
        title=f"CCP test message to {target}",
        body=f"{who} sent this test from the admin at {timezone.now():%Y-%m-%d %H:%M:%S} UTC. "
        "If you read it, this target works.",
    )
    _enqueue_on_commit(delivery.pk)
    audit_log(user=user, obj=target, action="changed", message=f"Sent a test message (delivery #{delivery.pk}).")
    return delivery
