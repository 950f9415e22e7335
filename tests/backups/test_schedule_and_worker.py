"""The nightly schedule through beat's database scheduler and a real worker; concurrent requests."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from rest_framework.test import APIClient

from ccp.celery import app
from instances.backups.schedule import BACKUP_ALL_TASK, SCHEDULE_NAME, ensure_backup_schedule
from instances.choices import BackupLabel, BackupStatus
from instances.models import Backup
from instances.operations.models import InstanceLock

from .helpers import wait_for

FINAL = (BackupStatus.SUCCEEDED, BackupStatus.FAILED)


def test_the_migration_creates_the_nightly_schedule(db):
    task = PeriodicTask.objects.get(name=SCHEDULE_NAME)
    assert task.task == BACKUP_ALL_TASK and task.enabled
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("30", "2", "UTC")
    ensure_backup_schedule(django_apps)  # idempotent: staff edits are never overwritten
    assert PeriodicTask.objects.filter(name=SCHEDULE_NAME).count() == 1


@pytest.mark.testbed
def test_one_beat_tick_queues_the_nightly_backup_and_a_worker_runs_it(celery_worker_thread, make_tenant, backup_root):
    ensure_backup_schedule(django_apps)  # a transactional test may have flushed the migration's row
    enabled, opted_out = make_tenant(), make_tenant(backup_enabled=False)
    # As staff would in the admin: run it every minute; it last ran two minutes ago, so it is due.
    task = PeriodicTask.objects.get(name=SCHEDULE_NAME)
    task.crontab = CrontabSchedule.objects.create(minute="*", hour="*", timezone="UTC")
    task.last_run_at = timezone.now() - timedelta(minutes=2)
    task.save()

    scheduler = DatabaseScheduler(app=app)
    for _ in range(10):  # one tick sends one due entry; stop once nothing else is due
        if scheduler.tick() > 0:
            break
    scheduler.sync()

    backup = wait_for(
        lambda: Backup.objects.filter(instance=enabled.instance, status__in=FINAL).first(),
        what="the scheduled backup to finish",
    )
    assert backup.label == BackupLabel.SCHEDULED
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    assert (backup_root / backup.location / "MANIFEST.txt").is_file()
    assert not Backup.objects.filter(instance=opted_out.instance).exists()
    assert PeriodicTask.objects.get(name=SCHEDULE_NAME).total_run_count >= 1


def _in_memory_sqlite() -> bool:
    return connection.vendor == "sqlite" and connection.is_in_memory_db()


@pytest.mark.testbed
def test_two_requests_at_once_one_runs_the_other_is_refused(
    celery_worker_thread, make_tenant, backup_root, superuser, api
):
    if _in_memory_sqlite():
        pytest.skip(
            "in-memory SQLite (the test default) answers concurrent writers with 'table is locked' "
            "instead of waiting; run with DATABASE_URL=postgres://… (as CI does)"
        )
    tenant = make_tenant()
    url = f"/api/v1/instances/{tenant.instance.slug}/backups/"
    start = threading.Barrier(2, timeout=30)
    answers = []
    first = api(superuser)  # one token; a client per thread
    clients = [first, APIClient()]
    clients[1].credentials(HTTP_AUTHORIZATION=first._credentials["HTTP_AUTHORIZATION"])

    def request(client) -> None:
        start.wait()
        try:
            answers.append(client.post(url, {"label": "manual"}, format="json"))
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a.status_code for a in answers) == [202, 409]
    refused = next(a for a in answers if a.status_code == 409).json()["detail"]
    accepted = next(a for a in answers if a.status_code == 202).json()
    assert f"backup #{accepted['id']}" in refused
    backup = wait_for(
        lambda: Backup.objects.filter(pk=accepted["id"], status__in=FINAL).first(), what="the accepted backup to finish"
    )
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    assert Backup.objects.filter(instance=tenant.instance).count() == 1
    # The row is final a moment before the worker releases the lock (run_operation's finally).
    wait_for(lambda: not InstanceLock.objects.filter(instance=tenant.instance).exists(), what="the lock's release")
