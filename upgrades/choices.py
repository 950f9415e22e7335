"""Choices of releases and upgrades, shared by models, filters, admin and API."""

from django.db import models

from instances.operations.choices import StepStatus

__all__ = ["FINAL_UPGRADE_STATUSES", "StepStatus", "UpgradeMode", "UpgradeStatus"]


class UpgradeMode(models.TextChoices):
    IMAGE_ONLY = "image_only", "Quick upgrade (image only)"
    RELEASE = "release", "Upgrade to release"
    FULL = "full", "Full upgrade (tenant script)"


class UpgradeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    # The worker died mid-way; the reconciler rolled the node back from the copies kept on it.
    ROLLED_BACK_INTERRUPTED = "rolled_back_interrupted", "Rolled back (interrupted)"
    CANCELLED = "cancelled", "Cancelled"
    INTERRUPTED = "interrupted", "Interrupted"


FINAL_UPGRADE_STATUSES = {
    UpgradeStatus.SUCCEEDED,
    UpgradeStatus.FAILED,
    UpgradeStatus.ROLLED_BACK,
    UpgradeStatus.CANCELLED,
    UpgradeStatus.INTERRUPTED,
    UpgradeStatus.ROLLED_BACK_INTERRUPTED,
}
