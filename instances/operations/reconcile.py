"""Find operations whose worker died, and hand each to the handler its operation kind registered.

Celery is set up so that a long task is never delivered twice (acks early, see README): if a worker
dies mid-operation nobody re-runs the task. Instead this reconciler, run by beat every minute and by
every worker as it starts, looks for locks whose owner is dead, takes each over and calls the handler
registered for the lock's kind (`register_handler`). A handler either closes the operation (marks it
interrupted: the lock is then released here) or hands it to a new task (resume, roll back), which
then owns the lock: it says which by what it returns.

Taking over a lock is a compare-and-set on (instance, owner, generation), so two reconcilers never both
win, and it raises the lock's generation: every later write of the worker it was taken from is refused
(locks.Fence), so what the handler records stands.

Operations that hold no instance lock themselves (a rollout drives many upgrades, each holding its own)
register a sweep (`register_sweep`): a function the reconciler calls on every run, which finds that kind's
operations whose driver stopped and continues or closes them, returning one line per operation acted on.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .enqueue import enqueue_on_commit
from .locks import owner_id, owner_is_dead
from .models import InstanceLock
from .node_lock import NODE_LOCKED_KINDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handled:
    """What a handler did: the report line, and whether the lock stays (a new task will claim it)."""

    line: str
    keep_lock: bool = False


Handler = Callable[[InstanceLock], Handled | None]
_HANDLERS: dict[str, Handler] = {}
Sweep = Callable[[], list[str]]
_SWEEPS: dict[str, Sweep] = {}


def register_handler(kind: str) -> Callable[[Handler], Handler]:
    """Decorator: `fn(lock)` handles the dead operations of `kind`. Returning None means "closed it"."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[str(kind)] = fn
        return fn

    return register


def register_sweep(kind: str) -> Callable[[Sweep], Sweep]:
    """Decorator: `fn()` continues or closes the operations of `kind` whose driver stopped (see above)."""

    def register(fn: Sweep) -> Sweep:
        _SWEEPS[str(kind)] = fn
        return fn

    return register


def reconcile_stale_locks() -> list[str]:
    """Returns one line per lock (or swept operation) acted on (for logs and the command)."""
    report = []
    for lock in InstanceLock.objects.select_related("instance"):
        if not owner_is_dead(lock):
            continue
        try:
            line = _take_over(lock)
        except Exception:  # noqa: BLE001 - one lock's trouble (broker down: rolled back, next run retries) must not stop the rest
            log.exception("Reconciling %s failed; it is retried on the next run", lock)
            continue
        if line:
            report.append(line)
    for sweep in _SWEEPS.values():
        try:
            report.extend(sweep())
        except Exception:  # noqa: BLE001 - as above: the next run retries
            log.exception("A reconciler sweep failed; it is retried on the next run")
    for line in report:
        log.warning(line)
    return report


def _take_over(lock: InstanceLock) -> str | None:
    with transaction.atomic():
        taken = InstanceLock.objects.filter(
            instance_id=lock.instance_id,
            owner=lock.owner,
            operation_id=lock.operation_id,
            generation=lock.generation,
        ).update(owner=f"reconciler@{owner_id()}", heartbeat_at=timezone.now(), generation=F("generation") + 1)
        if not taken:
            return None  # another reconciler got there first, or the owner came back
        return _handle(lock)


def _handle(lock: InstanceLock) -> str:
    handler = _HANDLERS.get(lock.kind)
    handled = handler(lock) if handler else None
    if handled is not None and handled.keep_lock:
        return handled.line
    InstanceLock.objects.filter(instance_id=lock.instance_id).delete()
    if lock.kind in NODE_LOCKED_KINDS:
        # The operation is closed: the lock its dead worker may have left on the node goes too.
        enqueue_on_commit("instances.tasks.node_lock_break_task", lock.instance_id, lock.kind, lock.operation_id)
    if handled is not None:
        return handled.line
    if handler is None:
        return f"{lock.instance}: {lock.kind} #{lock.operation_id} lost its worker; no handler knows it: lock released."
    return f"{lock.instance}: {lock.kind} #{lock.operation_id} lost its worker; marked interrupted, lock released."
