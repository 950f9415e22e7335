"""Celery tasks: thin adapters that fetch by id and call one service."""

from celery import shared_task

from . import services
from .rollouts.services import rollout_kick_for_upgrade
from .rollouts.tasks import *  # noqa: F401,F403 - registers the rollout driver task with Celery


@shared_task(name="upgrades.tasks.upgrade_run_task", acks_late=False, ignore_result=False)
def upgrade_run_task(upgrade_id: int) -> str:
    try:
        return services.upgrade_run(upgrade_id=upgrade_id)
    finally:
        rollout_kick_for_upgrade(upgrade_id=upgrade_id)


@shared_task(name="upgrades.tasks.upgrade_resume_task", acks_late=False)
def upgrade_resume_task(upgrade_id: int) -> str:
    try:
        return services.upgrade_resume(upgrade_id=upgrade_id)
    finally:
        rollout_kick_for_upgrade(upgrade_id=upgrade_id)


@shared_task(name="upgrades.tasks.upgrade_recover_task", acks_late=False)
def upgrade_recover_task(upgrade_id: int) -> str:
    try:
        return services.upgrade_recover(upgrade_id=upgrade_id)
    finally:
        rollout_kick_for_upgrade(upgrade_id=upgrade_id)
