"""The delivery task: one attempt per run, retried with a growing delay until CCP_NOTIFY_MAX_ATTEMPTS."""

from celery import shared_task

from .choices import DeliveryStatus
from .models import NotificationDelivery
from .services import notification_deliver, notification_prune, notification_resend_stale, retry_delay

__all__ = ["notification_deliver_task", "notification_resend_stale_task"]


@shared_task(bind=True, name="instances.notifications.tasks.notification_deliver_task", max_retries=None)
def notification_deliver_task(self, delivery_id: int) -> str:
    status = notification_deliver(delivery_id=delivery_id)
    if status == DeliveryStatus.RETRYING:
        attempts = NotificationDelivery.objects.filter(pk=delivery_id).values_list("attempts", flat=True).first() or 1
        raise self.retry(countdown=retry_delay(attempts))
    return status


@shared_task(name="instances.notifications.tasks.notification_resend_stale_task")
def notification_resend_stale_task() -> list[int]:
    """Every 10 minutes (beat): queue lost deliveries again, and delete the old finished ones."""
    notification_prune()
    return notification_resend_stale()
