"""The reconciler's sweep for rollouts: a rollout whose driver stopped taking steps (its worker was
killed with the chain's next step in hand) gets a new driver chain. The rollout's state is all in the
database, so the new driver continues where the old one stopped (or halts it, when the killed worker's
upgrade failed over the budget): visible either way, and never two chains, since the old chain's token
no longer matches."""

import uuid

from django.db.models import Q
from django.utils import timezone

from instances.operations.enqueue import enqueue_on_commit
from instances.operations.locks import stale_after
from instances.operations.reconcile import register_sweep

from .choices import ACTIVE_ROLLOUT_STATUSES, RolloutItemStatus
from .models import Rollout
from .services import DRIVE_TASK


@register_sweep("rollout")
def rollouts_without_driver() -> list[str]:
    now = timezone.now()
    stale = now - stale_after()
    needs_driver = Q(status__in=ACTIVE_ROLLOUT_STATUSES) | Q(items__status=RolloutItemStatus.RUNNING)
    quiet = Q(driven_at__lt=stale) | Q(driven_at__isnull=True, created_at__lt=stale)
    report = []
    for rollout in Rollout.objects.filter(needs_driver).filter(quiet).distinct():
        token = uuid.uuid4().hex
        if Rollout.objects.filter(pk=rollout.pk, tick_token=rollout.tick_token).update(tick_token=token, driven_at=now):
            enqueue_on_commit(DRIVE_TASK, rollout.pk, token)
            report.append(f"Rollout #{rollout.pk}: its driver stopped taking steps; a new driver continues it.")
    return report
