"""Choices of rollouts, shared by models, filters, admin and API."""

from django.db import models


class RolloutStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    HALTED = "halted", "Halted"
    SUCCEEDED = "succeeded", "Succeeded"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_ROLLOUT_STATUSES = {RolloutStatus.SCHEDULED, RolloutStatus.RUNNING}


class RolloutItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    # Its turn came while another operation held the instance's lock: tried again until the wait runs out.
    WAITING = "waiting", "Waiting for the instance's lock"
    RUNNING = "running", "Upgrading"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    # Its preview was blocked (or could not be computed) when the rollout was created: never touched.
    EXCLUDED = "excluded", "Excluded"
    # The rollout was cancelled before the instance's turn.
    SKIPPED = "skipped", "Skipped"


# Items the driver may still start.
OPEN_ITEM_STATUSES = {RolloutItemStatus.PENDING, RolloutItemStatus.WAITING}
# Items that need nothing more.
DONE_ITEM_STATUSES = {RolloutItemStatus.SUCCEEDED, RolloutItemStatus.EXCLUDED, RolloutItemStatus.SKIPPED}
