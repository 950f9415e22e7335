"""A scheduled backup that did not happen: checked every hour by beat (CELERY_BEAT_SCHEDULE).

An active instance with backups enabled is *missed* when its newest complete backup (any label) is
older than CCP_BACKUP_MISSED_HOURS (26 h by default: the nightly run plus its time to finish), or when
it has none and has existed that long. Nothing is missed while the nightly schedule is disabled. One
message per gap: it names the newest backup, and a new complete backup starts a new gap.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from instances.choices import BackupStatus, InstanceStatus
from instances.models import Backup, Instance
from instances.notifications.choices import NotificationEvent
from instances.notifications.services import notify

from .schedule import SCHEDULE_NAME


def backups_missed() -> list[Instance]:
    """The instances whose scheduled backup is overdue, each with `newest_backup_id` and `newest_backup_at`."""
    if not PeriodicTask.objects.filter(name=SCHEDULE_NAME, enabled=True).exists():
        return []
    cutoff = timezone.now() - timedelta(hours=settings.CCP_BACKUP_MISSED_HOURS)
    newest = Backup.objects.filter(instance=OuterRef("pk"), status=BackupStatus.SUCCEEDED).order_by("-created_at")
    instances = (
        Instance.objects.filter(status=InstanceStatus.ACTIVE, backup_enabled=True, created_at__lt=cutoff)
        .annotate(
            newest_backup_id=Subquery(newest.values("pk")[:1]),
            newest_backup_at=Subquery(newest.values("created_at")[:1]),
        )
        .select_related("node")
    )
    return [i for i in instances if i.newest_backup_at is None or i.newest_backup_at < cutoff]


def backups_missed_check() -> list[str]:
    report = []
    for instance in backups_missed():
        since = (
            f"its newest complete backup is #{instance.newest_backup_id} of "
            f"{instance.newest_backup_at:%Y-%m-%d %H:%M} UTC"
            if instance.newest_backup_id
            else "it has no complete backup at all"
        )
        notify(
            NotificationEvent.BACKUP_MISSED,
            title=f"No recent backup of {instance}",
            body=f"The scheduled backup of {instance} (node {instance.node}) was missed: {since}, older than "
            f"{settings.CCP_BACKUP_MISSED_HOURS:g} hours. Its backups list shows the failed or skipped attempts.",
            url=reverse("admin:instances_backup_changelist") + f"?instance__id__exact={instance.pk}",
            instance=instance,
            dedupe_key=f"backup-missed-{instance.pk}-{instance.newest_backup_id or 'none'}",
        )
        report.append(f"{instance}: {since}")
    return report
