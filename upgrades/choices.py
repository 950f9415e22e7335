"""Choices of releases, upgrades and the operation lock, shared by models, filters, admin and API."""

from django.db import models


class OperationKind(models.TextChoices):
    UPGRADE = "upgrade", "Upgrade"
    BACKUP = "backup", "Backup"
    RESTORE = "restore", "Restore"


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
    CANCELLED = "cancelled", "Cancelled"
    INTERRUPTED = "interrupted", "Interrupted"


FINAL_UPGRADE_STATUSES = {UpgradeStatus.SUCCEEDED, UpgradeStatus.FAILED, UpgradeStatus.ROLLED_BACK,
                          UpgradeStatus.CANCELLED, UpgradeStatus.INTERRUPTED}


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
