"""Writes for rollouts: create, halt, resume, cancel. Admin actions, API views and the command call these;
the driver (driver.py) does the rest."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ccp.audit import audit_log
from ccp.errors import CCPError
from instances.choices import InstanceStatus
from instances.operations.enqueue import BrokerUnavailable, enqueue_on_commit
from instances.preview_runs import PreviewBlock, preview_blocks_parallel

from ..choices import UpgradeMode
from ..models import Release
from .choices import OPEN_ITEM_STATUSES, RolloutItemStatus, RolloutStatus
from .models import Rollout, RolloutItem
from .notify import rollout_notify_if_ended
from .waves import assign_waves, parse_wave_spec

log = logging.getLogger(__name__)

DRIVE_TASK = "upgrades.rollouts.tasks.rollout_drive_task"


@dataclass(frozen=True)
class InstanceCheck:
    """What the "Roll out…" page and the API show per instance before the rollout starts."""

    instance: object
    current_version: str
    summary: str
    preview_hash: str = ""
    excluded: str = ""  # why the instance is left out (blocked preview, disabled); empty: it takes part


def rollout_check_instances(*, instances: list, mode: str, release: Release | None = None) -> list[InstanceCheck]:
    """Per instance: its current version and, for a release, its preview (computed now, nodes in
    parallel, a few at a time per node). Reads only: the node is not changed."""
    checks = {}
    to_preview = []
    for instance in instances:
        current = instance.observed_version or "unknown"
        if instance.status == InstanceStatus.DISABLED:
            checks[instance.pk] = InstanceCheck(instance, current, "", excluded="Disabled: enable it to upgrade it.")
        elif mode == UpgradeMode.RELEASE:
            to_preview.append(instance)
        else:
            checks[instance.pk] = InstanceCheck(instance, current, f"{current} → the new image tag")
    if to_preview:
        blocks = preview_blocks_parallel(instances=to_preview, release=release)
        for instance in to_preview:
            checks[instance.pk] = _preview_check(instance, blocks[instance.pk])
    return [checks[instance.pk] for instance in instances]


def _preview_check(instance, block: PreviewBlock) -> InstanceCheck:
    current = instance.observed_version or "unknown"
    if block.report is None:
        return InstanceCheck(instance, current, "", excluded=f"No preview: {block.error}")
    report = block.report
    if report.blocked:
        return InstanceCheck(instance, current, "", preview_hash=report.preview_hash, excluded=report.blocked_reason)
    changed = [f for f in report.files if str(f.status) != "unchanged"]
    summary = f"{len(changed)} of {len(report.files)} files change ({report.kind})" if changed else "no file changes"
    return InstanceCheck(instance, current, summary, preview_hash=report.preview_hash)


def rollout_create(
    *,
    instances: list,
    mode: str,
    user=None,
    release: Release | None = None,
    image_tag: str = "",
    canary_size: int = 1,
    waves: str = "rest",
    parallelism: int = 0,
    per_node_limit: int | None = None,
    failure_budget: int = 0,
    start_at: datetime | None = None,
    approved_hashes: dict[int, str] | None = None,
) -> Rollout:
    """Check the instances (previews for a release), create the rollout and its items, queue its driver.

    `approved_hashes` (instance id → preview hash) are the previews the operator saw and approved (the
    "Roll out…" page posts them): an instance whose preview changed since is excluded, named. Without
    them, the previews computed now are the approved ones."""
    instances = list({i.pk: i for i in instances}.values())
    if not instances:
        raise CCPError("Select at least one instance to roll out to.")
    _check_target(mode=mode, release=release, image_tag=image_tag)
    parse_wave_spec(waves)
    if per_node_limit is not None and per_node_limit < 1:
        raise CCPError("The per-node limit must be at least 1 upgrade at a time.")
    checks = rollout_check_instances(instances=instances, mode=mode, release=release)
    checks = [_against_approval(check, approved_hashes) for check in checks]
    if all(check.excluded for check in checks):
        reasons = "; ".join(f"{check.instance}: {check.excluded}" for check in checks[:5])
        raise CCPError(f"No selected instance can be rolled out to: {reasons}")
    with transaction.atomic():
        rollout = Rollout(
            mode=mode,
            release=release if mode != UpgradeMode.IMAGE_ONLY else None,
            image_tag=image_tag if mode != UpgradeMode.RELEASE else "",
            canary_size=canary_size,
            waves=waves or "rest",
            parallelism=parallelism,
            per_node_limit=per_node_limit,
            failure_budget=failure_budget,
            start_at=start_at,
            created_by=user if user and user.is_authenticated else None,
            tick_token=uuid.uuid4().hex,
        )
        rollout.full_clean(exclude=["release", "created_by"])
        rollout.save()
        taking_part = [check for check in checks if not check.excluded]
        planned = assign_waves(
            taking_part, canary=canary_size, spec=rollout.waves, node_of=lambda c: c.instance.node_id
        )
        rows = [
            RolloutItem(
                rollout=rollout,
                instance=check.instance,
                wave=wave,
                position=position,
                from_version=check.current_version,
                approved_preview_hash=check.preview_hash,
                preview_summary=check.summary[:500],
            )
            for position, (check, wave) in enumerate(planned)
        ]
        last_wave = max((wave for _, wave in planned), default=0)
        rows += [
            RolloutItem(
                rollout=rollout,
                instance=check.instance,
                wave=last_wave,
                position=len(planned) + n,
                status=RolloutItemStatus.EXCLUDED,
                from_version=check.current_version,
                approved_preview_hash=check.preview_hash,
                error=check.excluded,
            )
            for n, check in enumerate(c for c in checks if c.excluded)
        ]
        RolloutItem.objects.bulk_create(rows)
        audit_log(
            user=user,
            obj=rollout,
            action="added",
            message=f"Started rollout #{rollout.pk} to {rollout.target} on {len(taking_part)} instance(s).",
        )
        enqueue_on_commit(DRIVE_TASK, rollout.pk, rollout.tick_token)
    return rollout


def _check_target(*, mode: str, release: Release | None, image_tag: str) -> None:
    if mode == UpgradeMode.IMAGE_ONLY and not image_tag:
        raise CCPError("A Quick-upgrade rollout needs the image tag to move to.")
    if mode == UpgradeMode.RELEASE and release is None:
        raise CCPError("A rollout to a release needs the release.")
    if mode == UpgradeMode.FULL and not (release or image_tag):
        raise CCPError("A full-upgrade rollout needs the version (image tag or release) to pass to the script.")
    if mode not in UpgradeMode.values:
        raise CCPError(f"Unknown upgrade mode {mode!r}.")


def _against_approval(check: InstanceCheck, approved: dict[int, str] | None) -> InstanceCheck:
    if check.excluded or approved is None or not check.preview_hash:
        return check
    seen = approved.get(check.instance.pk, "")
    if seen == check.preview_hash:
        return check
    return InstanceCheck(
        check.instance,
        check.current_version,
        check.summary,
        check.preview_hash,
        excluded=(
            f"Its preview changed since it was approved (approved {seen[:12] or 'nothing'}, now "
            f"{check.preview_hash[:12]}): preview it again."
        ),
    )


def _locked(rollout: Rollout) -> Rollout:
    return Rollout.objects.select_for_update(of=("self",)).select_related("release").get(pk=rollout.pk)


@transaction.atomic
def rollout_halt(*, rollout: Rollout, user=None, reason: str = "") -> Rollout:
    """Start no further upgrade; the running ones finish. Resume goes on with the instances not done."""
    rollout = _locked(rollout)
    if not rollout.is_active:
        raise CCPError(
            f"Rollout #{rollout.pk} is {rollout.get_status_display().lower()}; only a running or "
            "scheduled rollout can be halted."
        )
    status_before, rollout.status = rollout.status, RolloutStatus.HALTED
    rollout.reason = reason or f"Halted by {user or 'an operator'}."
    rollout.save(update_fields=["status", "reason"])
    rollout_notify_if_ended(rollout, status_before=status_before)
    rollout.items.filter(status=RolloutItemStatus.WAITING).update(status=RolloutItemStatus.PENDING, waiting_since=None)
    audit_log(user=user, obj=rollout, action="changed", message=f"Halted rollout #{rollout.pk}.")
    return rollout


def rollout_resume(*, rollout: Rollout, user=None, image_tag: str = "", release: Release | None = None) -> Rollout:
    """Go on with the instances not done (failed ones are tried again), optionally with a new target
    (after the operator fixed the cause). A release rollout previews those instances again: resuming
    approves what they would change now."""
    rollout = Rollout.objects.select_related("release").get(pk=rollout.pk)
    if rollout.status != RolloutStatus.HALTED:
        raise CCPError(
            f"Rollout #{rollout.pk} is {rollout.get_status_display().lower()}; only a halted rollout can be resumed."
        )
    new_release = release or rollout.release
    new_tag = image_tag or rollout.image_tag
    _check_target(mode=rollout.mode, release=new_release, image_tag=new_tag)
    again = list(
        rollout.items.select_related("instance__node").filter(
            status__in=[*OPEN_ITEM_STATUSES, RolloutItemStatus.FAILED]
        )
    )
    checks = {}
    if rollout.mode == UpgradeMode.RELEASE:
        checks = {
            c.instance.pk: c
            for c in rollout_check_instances(
                instances=[i.instance for i in again], mode=rollout.mode, release=new_release
            )
        }
    with transaction.atomic():
        rollout = _locked(rollout)
        if rollout.status != RolloutStatus.HALTED:
            raise CCPError(f"Rollout #{rollout.pk} changed meanwhile (it is {rollout.get_status_display().lower()}).")
        for item in again:
            check = checks.get(item.instance_id)
            item.status, item.error, item.waiting_since = RolloutItemStatus.PENDING, "", None
            if check is not None:
                item.approved_preview_hash, item.preview_summary = check.preview_hash, check.summary[:500]
                if check.excluded:
                    item.status, item.error = RolloutItemStatus.EXCLUDED, check.excluded
            item.save(update_fields=["status", "error", "waiting_since", "approved_preview_hash", "preview_summary"])
        changed = []
        if rollout.mode != UpgradeMode.IMAGE_ONLY and new_release != rollout.release:
            rollout.release = new_release
            changed.append(f"release {new_release}")
        if rollout.mode != UpgradeMode.RELEASE and new_tag != rollout.image_tag:
            rollout.image_tag = new_tag
            changed.append(f"image tag {new_tag}")
        rollout.status, rollout.reason, rollout.finished_at = RolloutStatus.RUNNING, "", None
        rollout.tick_token = uuid.uuid4().hex
        rollout.full_clean(exclude=["release", "created_by"])
        rollout.save()
        target = f" with {', '.join(changed)}" if changed else ""
        audit_log(user=user, obj=rollout, action="changed", message=f"Resumed rollout #{rollout.pk}{target}.")
        enqueue_on_commit(DRIVE_TASK, rollout.pk, rollout.tick_token)
    return rollout


@transaction.atomic
def rollout_cancel(*, rollout: Rollout, user=None) -> Rollout:
    """No further upgrade starts; the running ones finish (they are not cancelled mid-way)."""
    rollout = _locked(rollout)
    if rollout.status in (RolloutStatus.SUCCEEDED, RolloutStatus.CANCELLED):
        raise CCPError(f"Rollout #{rollout.pk} has already ended ({rollout.get_status_display().lower()}).")
    status_before, rollout.status = rollout.status, RolloutStatus.CANCELLED
    rollout.reason = f"Cancelled by {user or 'an operator'}."
    skipped = rollout.items.filter(status__in=OPEN_ITEM_STATUSES).update(
        status=RolloutItemStatus.SKIPPED, waiting_since=None
    )
    if not rollout.items.filter(status=RolloutItemStatus.RUNNING).exists():
        rollout.finished_at = timezone.now()
    rollout.save(update_fields=["status", "reason", "finished_at"])
    rollout_notify_if_ended(rollout, status_before=status_before)
    audit_log(
        user=user, obj=rollout, action="changed", message=f"Cancelled rollout #{rollout.pk} ({skipped} not started)."
    )
    return rollout


def rollout_kick_for_upgrade(*, upgrade_id: int) -> None:
    """An upgrade ended: if a rollout waits for it, let its driver take the next step now, not at its tick."""
    rollout_id = (
        RolloutItem.objects.filter(upgrade_id=upgrade_id, status=RolloutItemStatus.RUNNING)
        .values_list("rollout_id", flat=True)
        .first()
    )
    if rollout_id:
        try:
            enqueue_on_commit(DRIVE_TASK, rollout_id, "")
        except BrokerUnavailable as error:  # the upgrade's outcome is recorded; the driver's own tick goes on
            log.warning("Could not kick rollout #%s after upgrade #%s: %s", rollout_id, upgrade_id, error.message)
