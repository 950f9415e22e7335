"""What the lock reconciler (instances.operations.reconcile) does with a backup or restore whose worker died:
the backup is marked failed (its .partial folder removed), the restore interrupted."""

from __future__ import annotations

import logging

from django.utils import timezone

from instances.attention import attention_raise
from instances.choices import BackupStatus, RestoreStatus
from instances.models import Backup, Restore
from instances.operations.choices import OperationKind
from instances.operations.progress import steps_interrupted
from instances.operations.reconcile import register_handler

from .storage import backup_storage

log = logging.getLogger(__name__)


@register_handler(OperationKind.BACKUP)
def backup_lost_worker(lock) -> None:
    _backup_interrupted(lock.operation_id)
    steps_interrupted(kind=OperationKind.BACKUP, operation_id=lock.operation_id)


@register_handler(OperationKind.RESTORE)
def restore_lost_worker(lock) -> None:
    _restore_interrupted(lock.operation_id, lock.instance)
    steps_interrupted(kind=OperationKind.RESTORE, operation_id=lock.operation_id)


def _backup_interrupted(backup_id: int) -> None:
    backup = Backup.objects.filter(pk=backup_id, status__in=[BackupStatus.PENDING, BackupStatus.RUNNING]).first()
    if backup is None:
        return
    if backup.location:
        try:
            backup_storage().discard(backup.location)
        except Exception:  # noqa: BLE001 - unreachable storage: the next prune sweeps what is left
            log.warning("Could not remove the partial files of backup #%s", backup.pk, exc_info=True)
    Backup.objects.filter(pk=backup.pk, status__in=[BackupStatus.PENDING, BackupStatus.RUNNING]).update(
        status=BackupStatus.FAILED,
        location="",
        finished_at=timezone.now(),
        error="Interrupted: the worker running this backup stopped (lost heartbeat); its partial files were removed.",
    )


def _restore_interrupted(restore_id: int, instance) -> None:
    updated = Restore.objects.filter(pk=restore_id, status__in=[RestoreStatus.PENDING, RestoreStatus.RUNNING]).update(
        status=RestoreStatus.INTERRUPTED,
        finished_at=timezone.now(),
        error="Interrupted: the worker running this restore stopped (lost heartbeat). The node may be half-way; "
        f"look in {instance.install_dir}/.ccp-restore-{restore_id}/ on it, then restore again.",
    )
    if updated:
        attention_raise(
            instance=instance,
            reason=f"Restore #{restore_id} was interrupted when its worker stopped.",
            operation_kind="restore",
            operation_id=restore_id,
        )
