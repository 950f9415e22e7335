"""What the lock reconciler (instances.operations.reconcile) does with an upgrade whose worker died:

- a full upgrade whose script runs detached on the node is resumed: a new task re-attaches to the job;
- a Quick or release upgrade that had changed the node is rolled back by a new task from the copies kept
  on the node, its previous stack brought up and checked: "rolled back (interrupted)";
- any other upgrade is marked interrupted (steps left running are closed as interrupted), and the
  instance flagged for attention when the node may be half-way.
"""

from django.utils import timezone

from instances.attention import attention_raise
from instances.operations import progress
from instances.operations.choices import OperationKind
from instances.operations.enqueue import enqueue_on_commit
from instances.operations.reconcile import Handled, register_handler

from .choices import UpgradeStatus
from .models import Upgrade
from .modes import mode_for


@register_handler(OperationKind.UPGRADE)
def upgrade_lost_worker(lock) -> Handled | None:
    upgrade = Upgrade.objects.filter(pk=lock.operation_id).first()
    mode = mode_for(upgrade.mode) if upgrade else None
    if upgrade and upgrade.status == UpgradeStatus.RUNNING and mode.resumes_detached_job and upgrade.detached_job_id:
        enqueue_on_commit("upgrades.tasks.upgrade_resume_task", upgrade.pk)
        return Handled(
            f"{lock.instance}: upgrade #{upgrade.pk} lost its worker; resuming it on its detached job.", keep_lock=True
        )
    if (
        upgrade
        and upgrade.status == UpgradeStatus.RUNNING
        and mode.recovers_from_kept_copies
        and upgrade.state.get("changed")
    ):
        # The lock stays with the reconciler until the recovery task claims it: no other operation
        # may start on a half-changed tenant.
        enqueue_on_commit("upgrades.tasks.upgrade_recover_task", upgrade.pk)
        return Handled(
            f"{lock.instance}: upgrade #{upgrade.pk} lost its worker after changing the node; rolling "
            "it back from the copies kept on the node.",
            keep_lock=True,
        )
    if upgrade and not upgrade.is_final:
        steps_interrupted(upgrade)
        changed = bool(upgrade.state.get("changed"))
        upgrade.status, upgrade.finished_at = UpgradeStatus.INTERRUPTED, timezone.now()
        upgrade.error = (
            "The worker running this upgrade stopped (lost heartbeat). The node may be half-way; "
            "check it, then upgrade again or restore."
            if changed
            else "The worker running this upgrade stopped (lost heartbeat) before it changed anything "
            "on the node: nothing to roll back."
        )
        upgrade.save(update_fields=["status", "finished_at", "error"])
        if changed:
            attention_raise(
                instance=lock.instance,
                reason=f"Upgrade #{upgrade.pk} was interrupted when its worker stopped, after it changed the node.",
                operation_kind="upgrade",
                operation_id=upgrade.pk,
            )
    return None


def steps_interrupted(upgrade: Upgrade) -> int:
    """Close every step the dead worker left running: interrupted, ended now."""
    return progress.steps_interrupted(kind=OperationKind.UPGRADE, operation_id=upgrade.pk)
