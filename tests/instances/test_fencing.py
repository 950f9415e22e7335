"""The lock's fence: every claim and every takeover raises the lock's generation, and a runner's writes
need the generation it claimed, so a runner whose lock was taken over can never overwrite what the
reconciler recorded. The heartbeat outlives a dropped database connection and reports a lost lock."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from instances.backups.services import backup_request
from instances.choices import BackupStatus
from instances.models import Backup
from instances.operations.choices import OperationKind
from instances.operations.locks import Heartbeat, LockLost, lock_claim
from instances.operations.models import InstanceLock
from instances.operations.reconcile import reconcile_stale_locks
from instances.operations.run import run_operation

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="pg_terminate_backend needs PostgreSQL")


def _requested_backup(instance) -> tuple[Backup, dict]:
    backup = backup_request(instance=instance, enqueue=False)
    return backup, {"instance_id": instance.pk, "kind": OperationKind.BACKUP, "operation_id": backup.pk}


def _make_stale(key: dict) -> None:
    InstanceLock.objects.filter(**key).update(heartbeat_at=timezone.now() - timedelta(hours=1))


@pytest.mark.django_db
def test_every_claim_and_every_takeover_raises_the_generation(make_instance):
    backup, key = _requested_backup(make_instance())
    assert InstanceLock.objects.get(instance_id=key["instance_id"]).generation == 0

    first = lock_claim(**key)
    second = lock_claim(**key)  # a second delivery of the same task claims again: the first claim is void

    assert (first.generation, second.generation) == (1, 2)
    assert not first.holds() and second.holds()
    with pytest.raises(LockLost):
        first.write(lambda: Backup.objects.filter(pk=backup.pk).update(error="written by the stale claim"))
    backup.refresh_from_db()
    assert backup.error == ""


@pytest.mark.django_db
def test_the_reconcilers_record_is_never_overwritten_by_the_runner_it_took_the_lock_from(make_instance):
    backup, key = _requested_backup(make_instance())
    Backup.objects.filter(pk=backup.pk).update(status=BackupStatus.RUNNING)
    fence = lock_claim(**key)
    _make_stale(key)  # the heartbeat stopped: the reconciler takes the worker for dead

    assert reconcile_stale_locks()
    with pytest.raises(LockLost, match="reconciler's record stands"):
        fence.write(
            lambda: Backup.objects.filter(pk=backup.pk).update(status=BackupStatus.SUCCEEDED, error=""),
            what="the backup's result",
        )

    backup.refresh_from_db()
    assert backup.status == BackupStatus.FAILED
    assert backup.error.startswith("Interrupted: the worker running this backup stopped")
    assert fence.lost.is_set()


@pytest.mark.django_db
def test_a_runner_that_lost_its_lock_stops_at_the_next_safe_point_and_leaves_the_lock(make_instance):
    backup, key = _requested_backup(make_instance())
    reached = []

    def work(heartbeat) -> str:
        # Another process takes the lock over (what the reconciler does), while this runner works.
        InstanceLock.objects.filter(**key).update(owner="reconciler@elsewhere:1", generation=99)
        heartbeat.fence.write(lambda: None)  # the next write notices: LockLost
        reached.append("after the safe point")
        return "succeeded"

    status = run_operation(kind=OperationKind.BACKUP, row=backup, work=work, refused=lambda: "refused")

    assert status == "lock lost"
    assert reached == []
    lock = InstanceLock.objects.get(instance_id=key["instance_id"])
    assert (lock.owner, lock.generation) == ("reconciler@elsewhere:1", 99)  # left to its taker


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_reports_a_lock_taken_away_and_the_safe_point_raises(make_instance):
    backup, key = _requested_backup(make_instance())
    fence = lock_claim(**key)
    with Heartbeat(fence, interval=0.1):
        InstanceLock.objects.filter(**key).update(generation=fence.generation + 1)
        assert fence.lost.wait(timeout=10)
    with pytest.raises(LockLost):
        fence.check()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_reconnects_after_its_connection_is_terminated(make_instance):
    backup, key = _requested_backup(make_instance())
    fence = lock_claim(**key)
    with Heartbeat(fence, interval=0.2) as heartbeat:
        killed = _terminate_heartbeat_connection()
        terminated_at = timezone.now()
        time.sleep(2)
        beat = InstanceLock.objects.get(instance_id=key["instance_id"]).heartbeat_at
        alive = heartbeat._thread.is_alive()

    assert killed >= 1
    assert alive, "the heartbeat thread died with its connection"
    assert beat > terminated_at, "the heartbeat did not refresh the lock after its connection was terminated"
    assert not fence.lost.is_set()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_fenced_write_reconnects_after_its_connection_is_terminated(make_instance):
    backup, key = _requested_backup(make_instance())
    fence = lock_claim(**key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    _terminate(f"pid = {pid}")

    fence.write(lambda: Backup.objects.filter(pk=backup.pk).update(error="written after a reconnect"))

    backup.refresh_from_db()
    assert backup.error == "written after a reconnect"


def _terminate_heartbeat_connection() -> int:
    """Terminate the heartbeat thread's connection (its last query is the heartbeat's UPDATE)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        killed = _terminate("""query LIKE 'UPDATE "upgrades_instancelock" SET "heartbeat_at"%'""")
        if killed:
            return killed
        time.sleep(0.1)
    return 0


def _terminate(condition: str) -> int:
    from django.db import connections

    # A connection of its own: terminating this thread's connection from itself would fail mid-query.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE datname = current_database() AND pid <> pg_backend_pid() AND {condition}"
            )
            return cursor.fetchone()[0]
    finally:
        other.close()
