"""Retention: which backups to keep, and pruning the rest (after each scheduled backup).

Kept, per instance, among its complete backups:
- the newest CCP_BACKUP_KEEP_PER_LABEL of each label (at least one);
- the newest backup of each UTC calendar day, for the last CCP_BACKUP_KEEP_DAILY_DAYS days (today included);
- any backup a pending or running restore uses.
Failed backups hold no files and are kept as history; pending and running ones are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from instances.choices import BackupStatus, RestoreStatus
from instances.models import Backup, Instance, Restore

from . import layout
from .storage import backup_storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    id: int
    label: str
    created_at: datetime


def expired(
    candidates: Iterable[Candidate], *, now: datetime, keep_per_label: int, keep_days: int, in_use: Iterable[int] = ()
) -> list[int]:
    """The ids the rules above do not keep, newest first. Pure: no database, no disk."""
    newest_first = sorted(candidates, key=lambda c: c.created_at, reverse=True)
    keep = set(in_use)
    per_label: dict[str, int] = {}
    for candidate in newest_first:
        per_label[candidate.label] = per_label.get(candidate.label, 0) + 1
        if per_label[candidate.label] <= max(1, keep_per_label):
            keep.add(candidate.id)
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=keep_days - 1)
    days_seen = set()
    for candidate in newest_first:
        day = candidate.created_at.astimezone(UTC).date()
        if keep_days > 0 and first_day <= day <= today and day not in days_seen:
            days_seen.add(day)
            keep.add(candidate.id)
    return [c.id for c in newest_first if c.id not in keep]


def backups_prune(*, instance: Instance, now: datetime | None = None) -> list[str]:
    """Remove the backups of `instance` that retention does not keep (files first, then row), and what
    incomplete backups left in the storage (.partial folders, prefixes without MANIFEST.txt, unfinished
    multipart uploads) unless a running backup owns it. Returns (and logs) one line per removal."""
    complete = Backup.objects.filter(instance=instance, status=BackupStatus.SUCCEEDED)
    in_use = Restore.objects.filter(
        instance=instance, status__in=[RestoreStatus.PENDING, RestoreStatus.RUNNING], backup__isnull=False
    ).values_list("backup_id", flat=True)
    doomed = expired(
        (Candidate(b.pk, b.label, b.created_at) for b in complete.only("pk", "label", "created_at")),
        now=now or timezone.now(),
        keep_per_label=settings.CCP_BACKUP_KEEP_PER_LABEL,
        keep_days=settings.CCP_BACKUP_KEEP_DAILY_DAYS,
        in_use=list(in_use),
    )
    report = []
    storage = backup_storage()
    for backup in complete.filter(pk__in=doomed).order_by("created_at"):
        if backup.location:
            storage.remove(backup.location)
        report.append(f"pruned backup #{backup.pk} of {instance} ({backup.label}, {backup.location})")
        backup.delete()
    report += _sweep_leftovers(instance, storage)
    for line in report:
        log.info("Retention: %s", line)
    return report


def _sweep_leftovers(instance: Instance, storage) -> list[str]:
    running = (
        Backup.objects.filter(instance=instance, status__in=[BackupStatus.PENDING, BackupStatus.RUNNING])
        .exclude(location="")
        .values_list("location", flat=True)
    )
    return storage.sweep(
        layout.instance_backups_folder(node_name=instance.node.name, slug=instance.slug), running=running
    )
