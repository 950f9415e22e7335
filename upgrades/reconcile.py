"""Find operations whose worker died, and resume or close them.

Celery is set up so that a long task is never delivered twice (acks early, see README): if a worker
dies mid-upgrade nobody re-runs the task. Instead this reconciler, run by beat every minute and by
every worker as it starts, looks for locks whose owner is dead:

- a full upgrade whose script runs detached on the node is resumed: a new task re-attaches to the job;
- any other operation is marked interrupted, its lock released, and the instance flagged for attention.

Taking over a lock is a compare-and-set on (instance, owner), so two reconcilers never both win.
"""

import logging

from django.db import transaction
from django.utils import timezone

from .choices import OperationKind, UpgradeMode, UpgradeStatus
from .locks import owner_id, owner_is_dead
from .models import InstanceLock, Upgrade

log = logging.getLogger(__name__)


def reconcile_stale_locks() -> list[str]:
    """Returns one line per lock acted on (for logs and the command)."""
    report = []
    for lock in InstanceLock.objects.select_related("instance"):
        if not owner_is_dead(lock):
            continue
        with transaction.atomic():
            taken = InstanceLock.objects.filter(instance_id=lock.instance_id, owner=lock.owner,
                                                operation_id=lock.operation_id).update(
                owner=f"reconciler@{owner_id()}", heartbeat_at=timezone.now())
            if not taken:
                continue  # another reconciler got there first, or the owner came back
            report.append(_handle(lock))
    for line in report:
        log.warning(line)
    return report


def _handle(lock: InstanceLock) -> str:
    if lock.kind == OperationKind.UPGRADE:
        upgrade = Upgrade.objects.filter(pk=lock.operation_id).first()
        if upgrade and upgrade.status == UpgradeStatus.RUNNING and upgrade.mode == UpgradeMode.FULL \
                and upgrade.detached_job_id:
            transaction.on_commit(lambda: _enqueue_resume(upgrade.pk))
            return f"{lock.instance}: upgrade #{upgrade.pk} lost its worker; resuming it on its detached job."
        if upgrade and not upgrade.is_final:
            upgrade.status, upgrade.finished_at = UpgradeStatus.INTERRUPTED, timezone.now()
            upgrade.error = ("The worker running this upgrade stopped (lost heartbeat). The node may be "
                             "half-way; check it, then upgrade again or restore.")
            upgrade.save(update_fields=["status", "finished_at", "error"])
            _flag(lock.instance, f"Upgrade #{upgrade.pk} was interrupted when its worker stopped.")
    else:
        from instances.backups.reconcile import operation_interrupted

        operation_interrupted(lock)
    InstanceLock.objects.filter(instance_id=lock.instance_id).delete()
    return f"{lock.instance}: {lock.kind} #{lock.operation_id} lost its worker; marked interrupted, lock released."


def _flag(instance, text: str) -> None:
    instance.attention = text
    instance.save(update_fields=["attention"])


def _enqueue_resume(upgrade_id: int) -> None:
    from ccp.celery import app

    app.send_task("upgrades.tasks.upgrade_resume_task", args=[upgrade_id])
