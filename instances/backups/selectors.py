"""Reads about backups that other screens show (a fixed number of queries per page)."""

from django.db.models import OuterRef, Subquery
from django.utils.timesince import timesince

from instances.choices import BackupStatus
from instances.models import Backup


def annotate_last_backup(queryset):
    """Add last_backup_at (newest complete backup) and last_backup_status (newest attempt) to each
    instance, with subqueries: no query per row."""
    attempts = Backup.objects.filter(instance=OuterRef("pk")).order_by("-created_at")
    return queryset.annotate(
        last_backup_at=Subquery(attempts.filter(status=BackupStatus.SUCCEEDED).values("created_at")[:1]),
        last_backup_status=Subquery(attempts.values("status")[:1]),
    )


def last_backup_summary(instance) -> str:
    """'3 hours ago', 'never', plus a note when the newest attempt did not succeed."""
    when = getattr(instance, "last_backup_at", None)
    text = f"{timesince(when)} ago" if when else "never"
    status = getattr(instance, "last_backup_status", None)
    if status == BackupStatus.FAILED:
        text += " (last attempt failed)"
    elif status in (BackupStatus.PENDING, BackupStatus.RUNNING):
        text += f" ({status} now)"
    return text
