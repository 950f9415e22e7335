"""Celery tasks: thin adapters that fetch by id and call one service."""

from celery import shared_task

from . import services


@shared_task(name="upgrades.tasks.upgrade_run_task", acks_late=False, ignore_result=False)
def upgrade_run_task(upgrade_id: int) -> str:
    return services.upgrade_run(upgrade_id=upgrade_id)


@shared_task(name="upgrades.tasks.upgrade_resume_task", acks_late=False)
def upgrade_resume_task(upgrade_id: int) -> str:
    return services.upgrade_resume(upgrade_id=upgrade_id)


@shared_task(name="upgrades.tasks.upgrade_recover_task", acks_late=False)
def upgrade_recover_task(upgrade_id: int) -> str:
    return services.upgrade_recover(upgrade_id=upgrade_id)
