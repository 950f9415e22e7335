"""Nightly PeriodicTasks (django-celery-beat) that data migrations create once and staff then own: never
overwritten, so an edited schedule stays as it was left."""

from django.utils import timezone


def periodic_task_ensure(apps, *, name: str, task: str, crontab: dict, description: str) -> None:
    """Create the PeriodicTask `name` on `crontab` (UTC) unless it exists."""
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    if PeriodicTask.objects.filter(name=name).exists():
        return
    schedule, _ = CrontabSchedule.objects.get_or_create(**crontab, timezone="UTC")
    PeriodicTask.objects.create(name=name, task=task, crontab=schedule, enabled=True, description=description)
    # A running beat reloads its schedule when this changes.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def periodic_task_remove(apps, *, name: str) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()
