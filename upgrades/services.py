"""Writes for releases and upgrades. Admin actions, API views, tasks and commands call these."""

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from ccp.audit import audit_log
from ccp.errors import CCPError
from instances.choices import InstanceStatus
from instances.drivers import driver_for
from instances.operations.choices import OperationKind
from instances.operations.enqueue import enqueue_on_commit, operation_withdraw
from instances.operations.locks import Fence, lock_acquire, lock_claim, lock_release
from instances.operations.models import InstanceLock
from instances.operations.node_lock import NodeBusy, NodeLock
from instances.operations.run import operation_claim, run_operation

from .choices import UpgradeStatus
from .models import Release, Upgrade
from .modes import mode_for
from .reconcile import steps_interrupted
from .runner import StepContext, StepRunner, finished_step_keys

log = logging.getLogger(__name__)


# What a release is: an upgrade that used it recorded these, so they never change afterwards (make a new release).
RELEASE_CONTENT_FIELDS = ("version", "image_tag", "template_set", "registry")


def release_is_used(release: Release) -> bool:
    return release.pk is not None and Upgrade.objects.filter(release_id=release.pk).exists()


def release_check_unused_or_unchanged(*, release: Release) -> None:
    """CCPError when `release` (unsaved changes) alters what upgrades have already used."""
    if not release_is_used(release):
        return
    stored = Release.objects.get(pk=release.pk)
    changed = [f for f in RELEASE_CONTENT_FIELDS if getattr(stored, f) != getattr(release, f)]
    if changed:
        raise CCPError(
            f"Release {stored.version} has been used by upgrades, so its {', '.join(changed)} cannot change: "
            "make a new release instead."
        )


@transaction.atomic
def release_save(*, release: Release, user=None, changed_fields: list[str] | None = None) -> Release:
    created = release.pk is None
    release_check_unused_or_unchanged(release=release)
    if release.is_default:
        # One default at a time: making this one the default retires the previous one.
        Release.objects.filter(is_default=True).exclude(pk=release.pk).update(is_default=False)
    release.full_clean()
    release.save()
    audit_log(
        user=user,
        obj=release,
        action="added" if created else "changed",
        message="Added via API." if created else f"Changed {', '.join(changed_fields or [])} via API.",
    )
    return release


# --- upgrades ------------------------------------------------------------------------------------


@transaction.atomic
def upgrade_request(
    *,
    instance,
    mode: str,
    user=None,
    image_tag: str = "",
    release: Release | None = None,
    preview_hash: str = "",
    enqueue: bool = True,
) -> Upgrade:
    """Create an Upgrade row and take the instance lock in one transaction, then queue the task.

    Raises Conflict (409) naming the running operation when the instance is busy.
    """
    if instance.status == InstanceStatus.DISABLED:
        raise CCPError(f"{instance} is disabled; enable it before upgrading.")
    declared = mode_for(mode)
    upgrade = Upgrade(
        instance=instance,
        mode=mode,
        requested_by=user if user and user.is_authenticated else None,
        from_version=instance.observed_version,
    )
    declared.request(upgrade, release=release, image_tag=image_tag, preview_hash=preview_hash)
    if enqueue:
        upgrade.task_id = str(uuid.uuid4())
    upgrade.full_clean(exclude=["instance", "release", "requested_by"])
    upgrade.save()
    lock_acquire(instance=instance, kind=OperationKind.UPGRADE, operation_id=upgrade.pk)
    audit_log(
        user=user,
        obj=instance,
        action="changed",
        message=f"Requested {upgrade.get_mode_display()} #{upgrade.pk} to {upgrade.to_version}.",
    )
    if enqueue:
        enqueue_on_commit(
            "upgrades.tasks.upgrade_run_task",
            upgrade.pk,
            task_id=upgrade.task_id,
            withdraw=lambda: operation_withdraw(
                model=Upgrade,
                operation_id=upgrade.pk,
                pending=UpgradeStatus.PENDING,
                instance_id=instance.pk,
                kind=OperationKind.UPGRADE,
            ),
        )
    return upgrade


def upgrade_run(*, upgrade_id: int, on_step=None, resume: bool = False) -> str:
    """Run (or, with resume, continue) one upgrade to its end. Safe against running twice: only the
    caller that moves the row from pending to running (or re-claims a dead owner's lock) goes on."""
    if resume:  # the reconciler handed the running upgrade over (upgrade_resume claimed it)
        upgrade = Upgrade.objects.select_related("instance__node", "release").get(pk=upgrade_id)
        if upgrade.status != UpgradeStatus.RUNNING:
            return upgrade.status
    else:
        upgrade, claimed = operation_claim(
            Upgrade,
            upgrade_id,
            pending=UpgradeStatus.PENDING,
            running=UpgradeStatus.RUNNING,
            select_related=("instance__node", "release"),
        )
        if upgrade is None:
            return "missing"
        if not claimed:
            return upgrade.status
    return run_operation(
        kind=OperationKind.UPGRADE,
        row=upgrade,
        refused=lambda: _finish_without_lock(upgrade),
        work=lambda heartbeat: _run_with_lock(upgrade, on_step=on_step, resume=resume, fence=heartbeat.fence),
    )


def _run_with_lock(upgrade: Upgrade, *, on_step, resume: bool, fence: Fence) -> str:
    mode = mode_for(upgrade.mode)
    secrets = list(upgrade.instance.get_secrets().values())
    try:
        driver = driver_for(upgrade.instance.node)
    except CCPError as exc:
        upgrade.status, upgrade.error, upgrade.finished_at = UpgradeStatus.FAILED, exc.message, timezone.now()
        fence.write(lambda: upgrade.save(update_fields=["status", "error", "finished_at"]), what="the final status")
        return upgrade.status
    ctx = StepContext(upgrade=upgrade, driver=driver, secrets=secrets, fence=fence)
    node_lock = NodeLock(
        driver=driver, install_dir=upgrade.instance.install_dir, kind=OperationKind.UPGRADE, operation_id=upgrade.pk
    )
    try:
        node_lock.acquire()
    except NodeBusy as exc:  # another operation holds the tenant on the node: nothing was changed
        upgrade.status, upgrade.error, upgrade.finished_at = UpgradeStatus.FAILED, exc.message, timezone.now()
        fence.write(lambda: upgrade.save(update_fields=["status", "error", "finished_at"]), what="the final status")
        return upgrade.status
    except CCPError:
        pass  # the node does not answer: the precheck says so, in its step
    ctx.node_lock = node_lock
    with node_lock:
        return _run_steps(ctx, mode, on_step=on_step, resume=resume)


def _run_steps(ctx: StepContext, mode, *, on_step, resume: bool) -> str:
    upgrade, fence = ctx.upgrade, ctx.fence
    if resume:
        ctx.state["done_steps"] = finished_step_keys(upgrade)
        ctx.state["changed"] = True
        fence.write(lambda: steps_interrupted(upgrade), what="the steps the stopped worker left")
    runner = StepRunner(ctx, on_step=on_step)
    return runner.run(mode.steps(ctx), mode.rollback)


def _finish_without_lock(upgrade: Upgrade) -> str:
    upgrade.status, upgrade.finished_at = UpgradeStatus.INTERRUPTED, timezone.now()
    upgrade.error = "The instance lock was taken away before the upgrade could start (it was declared stale)."
    upgrade.save(update_fields=["status", "error", "finished_at"])
    return upgrade.status


@transaction.atomic
def upgrade_cancel(*, upgrade: Upgrade, user=None) -> Upgrade:
    """Pending: cancelled at once. Running: stops at the next safe point and rolls back what it changed."""
    upgrade = Upgrade.objects.select_for_update().get(pk=upgrade.pk)
    if upgrade.is_final:
        raise CCPError(f"Upgrade #{upgrade.pk} has already ended ({upgrade.get_status_display().lower()}).")
    if upgrade.status == UpgradeStatus.PENDING:
        upgrade.status, upgrade.finished_at, upgrade.error = UpgradeStatus.CANCELLED, timezone.now(), "Cancelled."
        upgrade.save(update_fields=["status", "finished_at", "error"])
        lock_release(instance_id=upgrade.instance_id, kind=OperationKind.UPGRADE, operation_id=upgrade.pk)
    else:
        upgrade.cancel_requested = True
        upgrade.save(update_fields=["cancel_requested"])
    audit_log(user=user, obj=upgrade.instance, action="changed", message=f"Cancelled upgrade #{upgrade.pk}.")
    return upgrade


def upgrade_recover(*, upgrade_id: int) -> str:
    """Roll back a Quick or release upgrade whose worker died after it changed the node (the reconciler
    hands it over holding the lock): from the copies kept under .ccp/upgrades/<id>/ on the node, bring the
    previous stack up and check it. Ends "rolled back (interrupted)", or failed with attention."""
    upgrade = Upgrade.objects.select_related("instance__node", "release").get(pk=upgrade_id)
    if upgrade.status != UpgradeStatus.RUNNING:
        return upgrade.status

    def work(heartbeat) -> str:
        heartbeat.fence.write(lambda: steps_interrupted(upgrade), what="the steps the stopped worker left")
        reason = (
            f"The worker running this upgrade stopped mid-way; CCP rolled the node back from the copies "
            f"kept in {upgrade.instance.install_dir}/.ccp/upgrades/{upgrade.pk}/."
        )
        try:
            driver = driver_for(upgrade.instance.node)
        except CCPError as exc:
            driver, reason = None, f"{reason} The node could not be reached: {exc.message}"
        ctx = StepContext(
            upgrade=upgrade,
            driver=driver,
            secrets=list(upgrade.instance.get_secrets().values()),
            fence=heartbeat.fence,
        )
        runner = StepRunner(ctx)
        rollback = mode_for(upgrade.mode).rollback(ctx) if driver else []
        if not rollback:
            return runner.run_rollback([], reason=reason, status=UpgradeStatus.INTERRUPTED)
        node_lock = NodeLock(
            driver=driver, install_dir=upgrade.instance.install_dir, kind=OperationKind.UPGRADE, operation_id=upgrade.pk
        )
        try:
            node_lock.acquire()  # the dead worker's own lock: taken over, and said so
        except CCPError as exc:
            return runner.run_rollback([], reason=f"{reason} {exc.message}", status=UpgradeStatus.INTERRUPTED)
        if node_lock.note:
            reason = f"{reason} It {node_lock.note}."
        ctx.node_lock = node_lock
        with node_lock:
            return runner.run_rollback(rollback, reason=reason, status=UpgradeStatus.ROLLED_BACK_INTERRUPTED)

    return run_operation(
        kind=OperationKind.UPGRADE, row=upgrade, work=work, refused=lambda: upgrade.status, claim=_claim_from_reconciler
    )


def _claim_from_reconciler(key: dict) -> Fence | None:
    """The reconciler holds the lock of the operation it handed over; only its task may take it."""
    return lock_claim(**key, from_reconciler=True)


def upgrade_resume(*, upgrade_id: int) -> str:
    """Continue an upgrade whose worker died: claim its lock (held by the reconciler) and re-attach."""
    upgrade = Upgrade.objects.get(pk=upgrade_id)
    claimed = InstanceLock.objects.filter(
        instance_id=upgrade.instance_id,
        kind=OperationKind.UPGRADE,
        operation_id=upgrade.pk,
        owner__startswith="reconciler@",
    ).update(owner="resuming", heartbeat_at=timezone.now())
    if not claimed:
        return upgrade.status
    return upgrade_run(upgrade_id=upgrade_id, resume=True)
