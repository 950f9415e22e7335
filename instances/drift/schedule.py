"""The nightly drift report's PeriodicTask (Periodic tasks → "Report fleet drift"), created once by a data
migration and then the staff's to change; never overwritten."""

SCHEDULE_NAME = "Report fleet drift"
DRIFT_REPORT_TASK = "instances.drift.tasks.drift_report_task"
# 04:15 UTC every night: after the nightly backups (02:30) have usually finished.
DEFAULT_CRONTAB = {"minute": "15", "hour": "4", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}


def ensure_drift_schedule(apps, schema_editor=None) -> None:
    from django.utils import timezone

    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    if PeriodicTask.objects.filter(name=SCHEDULE_NAME).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(**DEFAULT_CRONTAB, timezone="UTC")
    PeriodicTask.objects.create(
        name=SCHEDULE_NAME,
        task=DRIFT_REPORT_TASK,
        crontab=crontab,
        enabled=True,
        description="Previews every active instance against the release it runs and records what differs on "
        "its node (README, Drift report). Reads only; a new drift is notified once.",
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_drift_schedule(apps, schema_editor=None) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SCHEDULE_NAME).delete()
