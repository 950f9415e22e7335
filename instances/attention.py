"""The attention flag's lifecycle: raised by an operation, resolved by an operator or by a later success.

An instance needs attention while it has an unresolved Attention record. Operations raise one when
they leave the node in a state CCP cannot vouch for (a failed rollback, an interrupted operation); an
operator resolves it with a note once they have looked (admin action or the API's acknowledge), and a
later successful upgrade or restore of the same instance resolves it by itself, saying which one.
"""

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ccp.audit import audit_log
from ccp.errors import CCPError

from .models import Attention, Instance
from .notifications.choices import NotificationEvent
from .notifications.services import notify


def attention_raise(
    *, instance: Instance, reason: str, operation_kind: str = "", operation_id: int | None = None
) -> Attention:
    """Record why the instance needs attention; an instance that needed none until now is notified
    (instance.attention) — a second reason while one is open adds no message."""
    newly = not Attention.objects.filter(instance=instance, resolved_at__isnull=True).exists()
    attention = Attention.objects.create(
        instance=instance, reason=reason, operation_kind=operation_kind, operation_id=operation_id
    )
    if newly:
        notify(
            NotificationEvent.INSTANCE_ATTENTION,
            title=f"{instance} needs attention",
            body=f"{instance} (node {instance.node}) needs attention: {reason}",
            url=reverse("admin:instances_instance_change", args=[instance.pk]),
            instance=instance,
            dedupe_key=f"attention-{attention.pk}",
        )
    return attention


@transaction.atomic
def attention_acknowledge(*, instance: Instance, user, note: str) -> list[Attention]:
    """An operator looked and resolves every open attention record of the instance, with a note."""
    note = (note or "").strip()
    if not note:
        raise CCPError("Say in a note what you checked or did; the note is kept with the attention record.")
    open_ = list(Attention.objects.select_for_update().filter(instance=instance, resolved_at__isnull=True))
    if not open_:
        raise CCPError(f"{instance} needs no attention: there is nothing to acknowledge.")
    now = timezone.now()
    for attention in open_:
        attention.resolved_at, attention.resolved_by, attention.resolution = now, user, note
        attention.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    audit_log(
        user=user, obj=instance, action="changed", message=f"Acknowledged {len(open_)} attention record(s): {note}"
    )
    return open_


def attention_resolve_by(*, instance: Instance, operation: str) -> int:
    """A later operation succeeded on the instance (`operation`, e.g. "upgrade #12 succeeded"): every open
    attention record is resolved by it. Returns how many were."""
    return Attention.objects.filter(instance=instance, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolution=f"Resolved automatically: {operation}."
    )


def open_attention_count(instance: Instance) -> int:
    return Attention.objects.filter(instance=instance, resolved_at__isnull=True).count()
