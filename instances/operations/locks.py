"""The per-instance operation lock (one upgrade, backup or restore at a time), held in the database.

The lock is taken when an operation is *requested*, in the same transaction that creates its row, so
a second request is refused at once (409) instead of queueing silently behind the first. The worker
that runs the operation records itself as owner and refreshes a heartbeat; the reconciler (reconcile.py)
takes over locks whose owner died and hands each to the handler of its operation kind.
"""

import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ccp.errors import Conflict

from .models import InstanceLock

HEARTBEAT_SECONDS = 10


def stale_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "CCP_LOCK_STALE_SECONDS", 120))


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def describe(lock: InstanceLock) -> str:
    since = timezone.localtime(lock.acquired_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{lock.get_kind_display().lower()} #{lock.operation_id} (since {since})"


def lock_acquire(*, instance, kind: str, operation_id: int) -> InstanceLock:
    """Take the instance's lock or raise Conflict naming the operation that holds it."""
    try:
        with transaction.atomic():
            return InstanceLock.objects.create(
                instance=instance, kind=kind, operation_id=operation_id, heartbeat_at=timezone.now()
            )
    except IntegrityError:
        holder = InstanceLock.objects.filter(instance=instance).first()
        running = describe(holder) if holder else "another operation"
        raise Conflict(f"{instance} is busy: {running} is running. Wait for it to finish or cancel it.")


def lock_claim(*, instance_id: int, kind: str, operation_id: int) -> bool:
    """The worker that runs the operation marks itself as owner. False: the lock is not this operation's."""
    return bool(
        InstanceLock.objects.filter(instance_id=instance_id, kind=kind, operation_id=operation_id).update(
            owner=owner_id(), heartbeat_at=timezone.now()
        )
    )


def lock_release(*, instance_id: int, kind: str, operation_id: int) -> None:
    InstanceLock.objects.filter(instance_id=instance_id, kind=kind, operation_id=operation_id).delete()


def lock_is_held(*, instance_id: int, kind: str, operation_id: int) -> bool:
    return InstanceLock.objects.filter(instance_id=instance_id, kind=kind, operation_id=operation_id).exists()


def owner_is_dead(lock: InstanceLock, now=None) -> bool:
    """A lock's owner is dead when its heartbeat is stale, or it is a process of this host that is gone."""
    now = now or timezone.now()
    if not lock.owner:  # requested, not started yet: stale only after a long wait in the queue
        return now - lock.acquired_at > stale_after() * 30
    host, _, pid = lock.owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
        return True
    return now - lock.heartbeat_at > stale_after()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed worker whose parent died too can linger as a zombie nobody reaps: that is dead
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Heartbeat:
    """Refresh a held lock from a background thread while a long step runs; notice when it was taken away."""

    def __init__(self, *, instance_id: int, kind: str, operation_id: int, interval: float = HEARTBEAT_SECONDS):
        self.key = {"instance_id": instance_id, "kind": kind, "operation_id": operation_id}
        self.interval = interval
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ccp-lock-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                updated = InstanceLock.objects.filter(**self.key, owner=owner_id()).update(heartbeat_at=timezone.now())
                if not updated:
                    self.lost = True
                    return
        finally:
            connection.close()  # this thread's own connection
