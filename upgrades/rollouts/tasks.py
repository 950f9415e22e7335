"""The rollout's driver task: one step (driver.rollout_drive), then, if this call belongs to the rollout's
current chain, the next step is scheduled. Upgrade tasks kick it (no token) when an upgrade ends."""

from celery import shared_task

from .driver import rollout_drive


@shared_task(name="upgrades.rollouts.tasks.rollout_drive_task", acks_late=False, ignore_result=True)
def rollout_drive_task(rollout_id: int, token: str = "") -> None:
    delay = rollout_drive(rollout_id=rollout_id, token=token)
    if token and delay is not None:
        rollout_drive_task.apply_async(args=[rollout_id, token], countdown=delay)
