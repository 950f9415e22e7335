"""The nightly backup schedule: a django-celery-beat PeriodicTask that staff edit in the admin
(Periodic tasks → "Back up all active instances"). Created once by a data migration; never overwritten."""

SCHEDULE_NAME = "Back up all active instances"
BACKUP_ALL_TASK = "instances.backups.tasks.backup_all_scheduled_task"
# 02:30 UTC every night.
DEFAULT_CRONTAB = {"minute": "30", "hour": "2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}


def ensure_backup_schedule(apps, schema_editor=None) -> None:
    """Create the nightly PeriodicTask unless it exists (staff may have changed it: leave it alone)."""
    from django.utils import timezone

    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    if PeriodicTask.objects.filter(name=SCHEDULE_NAME).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(**DEFAULT_CRONTAB, timezone="UTC")
    PeriodicTask.objects.create(
        name=SCHEDULE_NAME,
        task=BACKUP_ALL_TASK,
        crontab=crontab,
        enabled=True,
        description="Takes a scheduled backup of every active instance that has backups enabled, then prunes "
        "old backups by the retention settings (README, Backups).",
    )
    # A running beat reloads its schedule when this changes.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_backup_schedule(apps, schema_editor=None) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SCHEDULE_NAME).delete()
