"""One step of a rollout, taken under a row lock on the rollout (`select_for_update`): two drivers of the
same rollout wait for each other, never act at once. A step:

1. records what the running upgrades became (succeeded, or failed: rolled back, interrupted, …);
2. a scheduled rollout whose start time came starts; one waits;
3. failures over the budget halt the rollout: no further instance is touched;
4. otherwise the current wave is the first one with instances not done; its instances start (one
   upgrade each, by `upgrade_request`, so locks, previews and approval work as for a single upgrade) as
   far as the per-node limit and the wave's parallelism allow. An instance another operation holds
   waits, then counts as failed naming the holder;
5. with nothing open or running left, the rollout has succeeded.

It returns when the driver should look again (None: the rollout needs no more steps).
"""

import logging
from collections import Counter
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ccp.errors import CCPError, Conflict

from ..services import upgrade_request
from .choices import OPEN_ITEM_STATUSES, RolloutItemStatus, RolloutStatus
from .models import Rollout, RolloutItem
from .notify import rollout_notify_if_ended
from .waves import startable

log = logging.getLogger(__name__)

# A scheduled rollout looks at the clock at least this often (and its heartbeat stays fresh).
SCHEDULED_TICK_SECONDS = 10.0


def rollout_drive(*, rollout_id: int, token: str = "") -> float | None:
    """Take one step. `token`: the driver chain this call belongs to; a call of an old chain (the
    reconciler started a new one) does nothing. Returns seconds until the next step, or None."""
    with transaction.atomic():
        rollout = (
            Rollout.objects.select_for_update(of=("self",))
            .select_related("release", "created_by")
            .filter(pk=rollout_id)
            .first()
        )
        if rollout is None:
            return None
        if token and token != rollout.tick_token:
            return None
        now = timezone.now()
        status_before = rollout.status
        items = list(rollout.items.select_related("instance__node", "upgrade"))
        _record_ended_upgrades(items, now)
        delay = settings.CCP_ROLLOUT_TICK_SECONDS
        if rollout.status == RolloutStatus.SCHEDULED:
            if rollout.start_at and rollout.start_at > now:
                delay = min(SCHEDULED_TICK_SECONDS, (rollout.start_at - now).total_seconds())
            else:
                rollout.status, rollout.started_at = RolloutStatus.RUNNING, now
        if rollout.status == RolloutStatus.RUNNING:
            _advance(rollout, items, now)
        running = any(item.status == RolloutItemStatus.RUNNING for item in items)
        if not rollout.is_active and not running and rollout.finished_at is None:
            rollout.finished_at = now
        rollout.driven_at = now
        rollout.save()
        rollout_notify_if_ended(rollout, status_before=status_before)
    return delay if rollout.is_active or running else None


def _record_ended_upgrades(items: list[RolloutItem], now: datetime) -> None:
    for item in items:
        if item.status != RolloutItemStatus.RUNNING:
            continue
        upgrade = item.upgrade
        if upgrade is None:
            _fail(item, "Its upgrade's record is gone.", now)
        elif upgrade.is_final:
            item.finished_at = upgrade.finished_at or now
            if upgrade.status == "succeeded":
                item.status, item.error = RolloutItemStatus.SUCCEEDED, ""
                item.save(update_fields=["status", "error", "finished_at"])
            else:
                detail = f": {upgrade.error}" if upgrade.error else "."
                _fail(item, f"Upgrade #{upgrade.pk} {upgrade.get_status_display().lower()}{detail}", item.finished_at)


def _advance(rollout: Rollout, items: list[RolloutItem], now: datetime) -> None:
    if _halt_if_over_budget(rollout, items, now):
        return
    running = [item for item in items if item.status == RolloutItemStatus.RUNNING]
    open_items = [item for item in items if item.status in OPEN_ITEM_STATUSES]
    failed = [item for item in items if item.status == RolloutItemStatus.FAILED]
    if not running and not open_items:
        rollout.status, rollout.finished_at = RolloutStatus.SUCCEEDED, now
        rollout.reason = f"{len(failed)} instance(s) failed, within the failure budget." if failed else ""
        return
    wave = min(item.wave for item in running + open_items)
    rollout.current_wave = wave
    chosen = startable(
        candidates=[item for item in open_items if item.wave == wave],
        running_per_node=Counter(item.instance.node_id for item in running),
        per_node_limit=rollout.effective_per_node_limit,
        running=len(running),
        parallelism=rollout.parallelism,
        node_of=lambda item: item.instance.node_id,
    )
    for item in chosen:
        _start(rollout, item, now)
    _halt_if_over_budget(rollout, items, now)  # an instance that could not start counts at once


def _halt_if_over_budget(rollout: Rollout, items: list[RolloutItem], now: datetime) -> bool:
    failed = [item for item in items if item.status == RolloutItemStatus.FAILED]
    if len(failed) <= rollout.failure_budget:
        return False
    rollout.status = RolloutStatus.HALTED
    last = max(failed, key=lambda item: item.finished_at or now)
    rollout.reason = (
        f"{len(failed)} instance(s) failed, more than the failure budget of {rollout.failure_budget}; "
        f"no further instance is touched. Last: {last.instance}: {last.error}"
    )
    for item in items:
        if item.status == RolloutItemStatus.WAITING:
            item.status, item.waiting_since = RolloutItemStatus.PENDING, None
            item.save(update_fields=["status", "waiting_since"])
    return True


def _start(rollout: Rollout, item: RolloutItem, now: datetime) -> None:
    try:
        upgrade = upgrade_request(
            instance=item.instance,
            mode=rollout.mode,
            user=rollout.created_by,
            image_tag=rollout.image_tag,
            release=rollout.release,
            preview_hash=item.approved_preview_hash,
        )
    except Conflict as exc:
        item.waiting_since = item.waiting_since or now
        waited = (now - item.waiting_since).total_seconds()
        if waited >= settings.CCP_ROLLOUT_LOCK_WAIT_SECONDS:
            _fail(item, f"Still locked after waiting {waited:.0f} s for its turn: {exc.message}", now)
        else:
            item.status, item.error = RolloutItemStatus.WAITING, exc.message
            item.save(update_fields=["status", "error", "waiting_since"])
        return
    except CCPError as exc:
        _fail(item, exc.message, now)
        return
    item.upgrade, item.status, item.error = upgrade, RolloutItemStatus.RUNNING, ""
    item.attempts += 1
    item.started_at, item.finished_at, item.waiting_since = now, None, None
    item.save(update_fields=["upgrade", "status", "error", "attempts", "started_at", "finished_at", "waiting_since"])
    log.info("Rollout #%s: upgrade #%s of %s started (wave %s).", rollout.pk, upgrade.pk, item.instance, item.wave)


def _fail(item: RolloutItem, error: str, now: datetime) -> None:
    item.status, item.error, item.finished_at, item.waiting_since = RolloutItemStatus.FAILED, error, now, None
    item.save(update_fields=["status", "error", "finished_at", "waiting_since"])
