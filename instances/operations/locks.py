"""The per-instance operation lock (one upgrade, backup or restore at a time), held in the database.

The lock is taken when an operation is *requested*, in the same transaction that creates its row, so
a second request is refused at once (409) instead of queueing silently behind the first. The worker
that runs the operation records itself as owner and refreshes a heartbeat; the reconciler (reconcile.py)
takes over locks whose owner died and hands each to the handler of its operation kind.

Every claim (and every takeover by the reconciler) raises the lock's `generation`: the claim is a Fence,
and the running operation's writes to its own records go through `Fence.write`, which refuses them once
the generation moved on. So a worker whose lock was taken (its heartbeat was declared stale) can never
overwrite what the reconciler recorded.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ccp.errors import CCPError, Conflict

from .db import connection_reset, db_retry
from .models import InstanceLock

log = logging.getLogger(__name__)

T = TypeVar("T")


def heartbeat_seconds() -> float:
    return getattr(settings, "CCP_LOCK_HEARTBEAT_SECONDS", 10)


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


def lock_claim(*, instance_id: int, kind: str, operation_id: int, from_reconciler: bool = False) -> "Fence | None":
    """The worker that runs the operation marks itself as owner and raises the lock's generation: the
    Fence it gets back is what every later write of the operation is conditional on. None: the lock is
    not this operation's (or, with `from_reconciler`, the reconciler does not hold it for this task)."""
    key = {"instance_id": instance_id, "kind": kind, "operation_id": operation_id}
    with transaction.atomic():
        found = InstanceLock.objects.select_for_update().filter(**key)
        if from_reconciler:
            found = found.filter(owner__startswith="reconciler@")
        lock = found.first()
        if lock is None:
            return None
        lock.owner, lock.heartbeat_at, lock.generation = owner_id(), timezone.now(), lock.generation + 1
        lock.save(update_fields=["owner", "heartbeat_at", "generation"])
    return Fence(**key, generation=lock.generation)


def lock_release(*, instance_id: int, kind: str, operation_id: int) -> None:
    """Release a lock no worker has claimed (a pending operation that was cancelled or withdrawn)."""
    InstanceLock.objects.filter(instance_id=instance_id, kind=kind, operation_id=operation_id).delete()


def lock_is_held(*, instance_id: int, kind: str, operation_id: int) -> bool:
    return InstanceLock.objects.filter(instance_id=instance_id, kind=kind, operation_id=operation_id).exists()


class LockLost(CCPError):
    """The operation no longer holds its instance's lock (the reconciler took it, or it cannot prove it
    still holds it): it must stop, write nothing more of its own and not touch the node again."""

    http_status = 409


class Fence:
    """The lock as one claim holds it: (instance, kind, operation, generation).

    `write(fn)` runs `fn` in a transaction that first locks the lock row *with this generation*: if the
    reconciler took the lock over meanwhile (its takeover raises the generation), nothing is written and
    LockLost is raised, so a runner can never overwrite what the reconciler recorded. Outage errors are
    retried (db_retry). `check()` is the runner's safe point: it raises LockLost when the heartbeat found
    the lock gone, and waits for the heartbeat when it has not been able to confirm the lock for a while.
    """

    def __init__(self, *, instance_id: int, kind: str, operation_id: int, generation: int):
        self.key = {"instance_id": instance_id, "kind": kind, "operation_id": operation_id}
        self.generation = generation
        self.lost = threading.Event()
        self.released = False
        self._confirmed_at = time.monotonic()
        self._confirmed = threading.Condition()

    def __repr__(self) -> str:
        return f"Fence({self.key['kind']} #{self.key['operation_id']} gen {self.generation})"

    def holds(self) -> bool:
        return InstanceLock.objects.filter(**self.key, generation=self.generation).exists()

    def write(
        self,
        fn: Callable[[], T],
        *,
        what: str = "the operation's progress",
        seconds: float | None = None,
        release: bool = False,
    ) -> T:
        """`fn()` while the lock is this claim's; with `release`, the lock goes in the same transaction
        (the final status): whoever sees the outcome finds the instance free."""

        def guarded() -> T:
            with transaction.atomic():
                held = InstanceLock.objects.select_for_update().filter(**self.key, generation=self.generation)
                if not held.exists():
                    self.lost.set()
                    raise self._lost_error()
                result = fn()
                if release:
                    held.delete()
            if release:
                self.released = True
            return result

        if self.lost.is_set():
            raise self._lost_error()
        return db_retry(guarded, what=what, seconds=seconds)

    def release(self) -> None:
        """Delete the lock if it is still this claim's (a lock the reconciler took stays with it)."""
        db_retry(
            lambda: InstanceLock.objects.filter(**self.key, generation=self.generation).delete(),
            what="the release of the instance lock",
        )

    def confirmed(self) -> None:
        with self._confirmed:
            self._confirmed_at = time.monotonic()
            self._confirmed.notify_all()

    def check(self) -> None:
        """A safe point: go on only while the lock is known to be held. When the heartbeat has not
        confirmed it for half the stale time (the database is away), wait for it up to the retry window."""
        if self.lost.is_set():
            raise self._lost_error()
        unconfirmed_after = stale_after().total_seconds() / 2
        deadline = time.monotonic() + settings.CCP_DB_RETRY_SECONDS
        with self._confirmed:
            while time.monotonic() - self._confirmed_at > unconfirmed_after and not self.lost.is_set():
                if time.monotonic() >= deadline:
                    self.lost.set()
                    raise LockLost(
                        f"{self._what()} could not confirm its instance lock for "
                        f"{time.monotonic() - self._confirmed_at:.0f} s (the database does not answer); it "
                        "stopped and leaves the instance to the reconciler."
                    )
                self._confirmed.wait(timeout=1.0)
        if self.lost.is_set():
            raise self._lost_error()

    def _what(self) -> str:
        return f"{self.key['kind'].capitalize()} #{self.key['operation_id']}"

    def _lost_error(self) -> LockLost:
        return LockLost(
            f"{self._what()} lost its instance lock (generation {self.generation}): it was taken over by the "
            "reconciler. It stopped without touching the node again; the reconciler's record stands."
        )


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
    """Refresh a held lock from a background thread while the operation runs.

    A database error does not end it: it drops the broken connection and tries again (every second
    or two until it succeeds). When the lock is gone (or has another generation) it sets `fence.lost`,
    which the runner checks at its next safe point."""

    def __init__(self, fence: Fence, *, interval: float | None = None):
        self.fence = fence
        self.interval = interval or heartbeat_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ccp-lock-heartbeat", daemon=True)

    @property
    def lost(self) -> bool:
        return self.fence.lost.is_set()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        wait = self.interval
        try:
            while not self._stop.wait(wait):
                try:
                    updated = InstanceLock.objects.filter(**self.fence.key, generation=self.fence.generation).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception as error:  # noqa: BLE001 - the heartbeat must outlive any one failed query
                    log.warning("Heartbeat of %r failed (retrying): %s", self.fence, error)
                    connection_reset()
                    wait = min(2.0, self.interval)
                    continue
                if not updated and self.fence.released:
                    return
                if not updated:
                    log.warning("%r: the lock was taken away; the runner stops at its next safe point.", self.fence)
                    self.fence.lost.set()
                    return
                self.fence.confirmed()
                wait = self.interval
        finally:
            connection_reset()  # this thread's own connection
