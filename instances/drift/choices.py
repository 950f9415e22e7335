from django.db import models


class DriftState(models.TextChoices):
    IN_SYNC = "in_sync", "In sync"
    DRIFTED = "drifted", "Drifted"
    UNREACHABLE = "unreachable", "Unreachable"
    UNKNOWN = "unknown", "Not checked"  # no release known for what it runs, or the render failed


class DriftReportStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
