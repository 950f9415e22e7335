"""Celery tasks for backups: thin adapters that fetch by id and call one service."""

from celery import shared_task

from .missed import backups_missed_check
from .restore import backup_restore_run
from .services import backup_all_scheduled, backup_run

__all__ = ["backup_all_scheduled_task", "backup_restore_task", "backup_run_task", "backups_missed_check_task"]


@shared_task(name="instances.backups.tasks.backup_run_task", acks_late=False)
def backup_run_task(backup_id: int) -> str:
    return backup_run(backup_id=backup_id)


@shared_task(name="instances.backups.tasks.backup_restore_task", acks_late=False)
def backup_restore_task(restore_id: int) -> str:
    return backup_restore_run(restore_id=restore_id)


@shared_task(name="instances.backups.tasks.backup_all_scheduled_task")
def backup_all_scheduled_task() -> list[str]:
    return backup_all_scheduled()


@shared_task(name="instances.backups.tasks.backups_missed_check_task")
def backups_missed_check_task() -> list[str]:
    return backups_missed_check()
