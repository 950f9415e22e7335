"""Choices shared by models, filters, admin and API."""

from django.db import models


class DriverKind(models.TextChoices):
    SSH = "ssh", "SSH"
    LOCAL = "local", "Local (this host)"


class InstanceStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    MAINTENANCE = "maintenance", "Maintenance"
    DISABLED = "disabled", "Disabled"


class Health(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    HEALTHY = "healthy", "Healthy"
    UNHEALTHY = "unhealthy", "Unhealthy"


class BackupLabel(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    PRE_UPGRADE = "pre-upgrade", "Pre-upgrade"
    MANUAL = "manual", "Manual"


class BackupStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RestoreStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"
    CANCELLED = "cancelled", "Cancelled"


class PreviewPurpose(models.TextChoices):
    PREVIEW = "preview", "Preview"
    UPGRADE = "upgrade", "Upgrade to release"


class PreviewRunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
