"""Celery tasks: thin adapters that fetch by id and call one service."""

from celery import shared_task
from celery.signals import worker_ready

from . import services
from .reconcile import reconcile_stale_locks


@shared_task(name="upgrades.tasks.upgrade_run_task", acks_late=False, ignore_result=False)
def upgrade_run_task(upgrade_id: int) -> str:
    return services.upgrade_run(upgrade_id=upgrade_id)


@shared_task(name="upgrades.tasks.upgrade_resume_task", acks_late=False)
def upgrade_resume_task(upgrade_id: int) -> str:
    return services.upgrade_resume(upgrade_id=upgrade_id)


@shared_task(name="upgrades.tasks.upgrade_recover_task", acks_late=False)
def upgrade_recover_task(upgrade_id: int) -> str:
    return services.upgrade_recover(upgrade_id=upgrade_id)


@shared_task(name="upgrades.tasks.reconcile_task")
def reconcile_task() -> list[str]:
    return reconcile_stale_locks()


@worker_ready.connect
def _reconcile_on_start(sender=None, **kwargs) -> None:
    # A worker that starts may be the one that replaced a killed worker: pick up its orphans now
    # rather than at the next beat tick.
    sender.app.send_task("upgrades.tasks.reconcile_task")
