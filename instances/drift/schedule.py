"""The nightly drift report's PeriodicTask (Periodic tasks → "Report fleet drift"), created once by a data
migration and then the staff's to change; never overwritten."""

from instances.beat_schedule import periodic_task_ensure, periodic_task_remove

SCHEDULE_NAME = "Report fleet drift"
DRIFT_REPORT_TASK = "instances.drift.tasks.drift_report_task"
# 04:15 UTC every night: after the nightly backups (02:30) have usually finished.
DEFAULT_CRONTAB = {"minute": "15", "hour": "4", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}


def ensure_drift_schedule(apps, schema_editor=None) -> None:
    periodic_task_ensure(
        apps,
        name=SCHEDULE_NAME,
        task=DRIFT_REPORT_TASK,
        crontab=DEFAULT_CRONTAB,
        description="Previews every active instance against the release it runs and records what differs on "
        "its node (README, Drift report). Reads only; a new drift is notified once.",
    )


def remove_drift_schedule(apps, schema_editor=None) -> None:
    periodic_task_remove(apps, name=SCHEDULE_NAME)
