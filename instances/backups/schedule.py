"""The nightly backup schedule: a django-celery-beat PeriodicTask that staff edit in the admin
(Periodic tasks → "Back up all active instances"). Created once by a data migration; never overwritten."""

from instances.beat_schedule import periodic_task_ensure, periodic_task_remove

SCHEDULE_NAME = "Back up all active instances"
BACKUP_ALL_TASK = "instances.backups.tasks.backup_all_scheduled_task"
# 02:30 UTC every night.
DEFAULT_CRONTAB = {"minute": "30", "hour": "2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}


def ensure_backup_schedule(apps, schema_editor=None) -> None:
    periodic_task_ensure(
        apps,
        name=SCHEDULE_NAME,
        task=BACKUP_ALL_TASK,
        crontab=DEFAULT_CRONTAB,
        description="Takes a scheduled backup of every active instance that has backups enabled, then prunes "
        "old backups by the retention settings (README, Backups).",
    )


def remove_backup_schedule(apps, schema_editor=None) -> None:
    periodic_task_remove(apps, name=SCHEDULE_NAME)
