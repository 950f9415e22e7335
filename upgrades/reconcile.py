"""Find operations whose worker died, and resume or close them.

Celery is set up so that a long task is never delivered twice (acks early, see README): if a worker
dies mid-upgrade nobody re-runs the task. Instead this reconciler, run by beat every minute and by
every worker as it starts, looks for locks whose owner is dead:

- a full upgrade whose script runs detached on the node is resumed: a new task re-attaches to the job;
- a Quick or release upgrade that had changed the node is rolled back by a new task from the copies kept
  on the node, its previous stack brought up and checked: "rolled back (interrupted)";
- any other operation is marked interrupted (steps left running are closed as interrupted), its lock
  released, and the instance flagged for attention when the node may be half-way.

Taking over a lock is a compare-and-set on (instance, owner), so two reconcilers never both win.
"""

import logging

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone

from instances.attention import attention_raise
from instances.backups.reconcile import operation_interrupted

from .choices import OperationKind, StepStatus, UpgradeMode, UpgradeStatus
from .locks import owner_id, owner_is_dead
from .models import InstanceLock, Upgrade

log = logging.getLogger(__name__)

# Modes whose rollback works from the copies kept under .ccp/upgrades/<id>/ on the node.
RECOVERABLE = (UpgradeMode.IMAGE_ONLY, UpgradeMode.RELEASE)


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
            transaction.on_commit(lambda: _enqueue("upgrades.tasks.upgrade_resume_task", upgrade.pk))
            return f"{lock.instance}: upgrade #{upgrade.pk} lost its worker; resuming it on its detached job."
        if upgrade and upgrade.status == UpgradeStatus.RUNNING and upgrade.mode in RECOVERABLE \
                and upgrade.state.get("changed"):
            # The lock stays with the reconciler until the recovery task claims it: no other operation
            # may start on a half-changed tenant.
            transaction.on_commit(lambda: _enqueue("upgrades.tasks.upgrade_recover_task", upgrade.pk))
            return (f"{lock.instance}: upgrade #{upgrade.pk} lost its worker after changing the node; rolling it "
                    "back from the copies kept on the node.")
        if upgrade and not upgrade.is_final:
            steps_interrupted(upgrade)
            changed = bool(upgrade.state.get("changed"))
            upgrade.status, upgrade.finished_at = UpgradeStatus.INTERRUPTED, timezone.now()
            upgrade.error = ("The worker running this upgrade stopped (lost heartbeat). The node may be half-way; "
                             "check it, then upgrade again or restore." if changed else
                             "The worker running this upgrade stopped (lost heartbeat) before it changed anything "
                             "on the node: nothing to roll back.")
            upgrade.save(update_fields=["status", "finished_at", "error"])
            if changed:
                attention_raise(instance=lock.instance, reason=f"Upgrade #{upgrade.pk} was interrupted when its "
                                f"worker stopped, after it changed the node.", operation_kind="upgrade",
                                operation_id=upgrade.pk)
    else:
        operation_interrupted(lock)
    InstanceLock.objects.filter(instance_id=lock.instance_id).delete()
    return f"{lock.instance}: {lock.kind} #{lock.operation_id} lost its worker; marked interrupted, lock released."


def steps_interrupted(upgrade: Upgrade) -> int:
    """Close every step the dead worker left running: interrupted, ended now."""
    return upgrade.steps.filter(status=StepStatus.RUNNING).update(
        status=StepStatus.INTERRUPTED, finished_at=timezone.now(),
        output=Concat("output", Value("\n[interrupted: the worker running this step stopped]")))


def _enqueue(task_name: str, upgrade_id: int) -> None:
    from ccp.celery import app

    app.send_task(task_name, args=[upgrade_id])
