"""The kinds of operation that take an instance's lock."""

from django.db import models


class OperationKind(models.TextChoices):
    UPGRADE = "upgrade", "Upgrade"
    BACKUP = "backup", "Backup"
    RESTORE = "restore", "Restore"
