"""The kinds of operation that take an instance's lock."""

from django.db import models


class OperationKind(models.TextChoices):
    UPGRADE = "upgrade", "Upgrade"
    BACKUP = "backup", "Backup"
    RESTORE = "restore", "Restore"


class StepStatus(models.TextChoices):
    """The status of one step of an operation (instances.operations.progress)."""

    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    INTERRUPTED = "interrupted", "Interrupted"  # its worker died while it ran
