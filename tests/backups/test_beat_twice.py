"""Celery beat runs once, but two beats (a mistake, or a failover) may fire the same tick: every beat task
must then do its work once. Fired twice at the same moment from two threads with their own database
connections."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from instances.backups.services import backup_all_scheduled
from instances.choices import BackupLabel, BackupStatus
from instances.models import Backup
from instances.operations.models import InstanceLock
from instances.tasks import reconcile_task

pytestmark = pytest.mark.django_db(transaction=True)


def twice_at_once(fire) -> list:
    """Call `fire` from two threads released together; their results."""
    barrier, results, errors = threading.Barrier(2), [None, None], []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[n] = fire()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_the_nightly_backup_fired_twice_requests_one_backup_per_instance(make_instance, settings):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no row locks; production runs PostgreSQL")
    instances = [make_instance(slug=f"beat-{n}", name=f"beat-{n}") for n in range(3)]
    opted_out = make_instance(slug="beat-off", name="beat-off", backup_enabled=False)

    reports = twice_at_once(backup_all_scheduled)

    for instance in instances:
        rows = list(Backup.objects.filter(instance=instance))
        assert len(rows) == 1, [(row.status, row.error) for row in rows]
        assert rows[0].label == BackupLabel.SCHEDULED and rows[0].status == BackupStatus.PENDING
        assert InstanceLock.objects.filter(instance=instance, operation_id=rows[0].pk).exists()
    assert not Backup.objects.filter(instance=opted_out).exists()
    assert not Backup.objects.filter(error__startswith="Skipped").exists()  # no false gap recorded
    lines = [line for report in reports for line in report]
    assert sum("queued backup" in line for line in lines) == 3
    assert sum("already requested" in line for line in lines) == 3

    # The next night (outside the window) requests again: the guard only merges one tick's fires.
    later = timezone.now() + timedelta(seconds=settings.CCP_BACKUP_SCHEDULE_DEDUP_SECONDS + 1)
    InstanceLock.objects.all().delete()
    assert all("queued backup" in line for line in backup_all_scheduled(now=later))


def test_the_reconciler_fired_twice_handles_a_dead_workers_lock_once(make_instance):
    instance = make_instance()
    backup = Backup.objects.create(instance=instance, status=BackupStatus.RUNNING)
    InstanceLock.objects.create(
        instance=instance,
        kind="backup",
        operation_id=backup.pk,
        owner="gone-host:1",
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )

    reports = twice_at_once(reconcile_task)

    assert sorted(len(report) for report in reports) == [0, 1]
    backup.refresh_from_db()
    assert backup.status == BackupStatus.FAILED and backup.error.startswith("Interrupted")
    assert not InstanceLock.objects.exists()
