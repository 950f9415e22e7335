"""Tell people when a rollout halted or finished (instances.notifications): once per halt (a resumed
rollout that halts again is a new halt) and once when it ends."""

from django.urls import reverse

from instances.notifications.choices import NotificationEvent
from instances.notifications.services import notify

from .choices import RolloutItemStatus, RolloutStatus
from .models import Rollout


def rollout_notify_if_ended(rollout: Rollout, *, status_before: str) -> None:
    """Call in the transaction that saved the rollout's new status: a halt, or the end (succeeded,
    cancelled), notifies; anything else does nothing."""
    if rollout.status == status_before:
        return
    counts = {status: 0 for status in RolloutItemStatus.values}
    for status in rollout.items.values_list("status", flat=True):
        counts[status] += 1
    summary = (
        f"{counts[RolloutItemStatus.SUCCEEDED]} succeeded, {counts[RolloutItemStatus.FAILED]} failed, "
        f"{counts[RolloutItemStatus.RUNNING]} still running, "
        f"{counts[RolloutItemStatus.PENDING] + counts[RolloutItemStatus.WAITING]} not started, "
        f"{counts[RolloutItemStatus.EXCLUDED]} excluded, {counts[RolloutItemStatus.SKIPPED]} skipped."
    )
    target = f"image tag {rollout.image_tag}" if rollout.image_tag else f"release {rollout.release}"
    link = reverse("admin:upgrades_rollout_change", args=[rollout.pk])
    if rollout.status == RolloutStatus.HALTED:
        notify(
            NotificationEvent.ROLLOUT_HALTED,
            title=f"Rollout #{rollout.pk} to {target} halted",
            body=f"{rollout.reason}\n{summary}",
            url=link,
            dedupe_key=f"rollout-{rollout.pk}-halted-{rollout.tick_token}",
        )
    elif rollout.status in (RolloutStatus.SUCCEEDED, RolloutStatus.CANCELLED):
        notify(
            NotificationEvent.ROLLOUT_FINISHED,
            title=f"Rollout #{rollout.pk} to {target} {rollout.get_status_display().lower()}",
            body=f"{rollout.reason}\n{summary}".strip(),
            url=link,
            dedupe_key=f"rollout-{rollout.pk}-finished",
        )
