"""Running an operation: the one sequence every long operation on an instance goes through.

    operation_claim   pending → running on the operation's row, by one conditional update: of two
                      deliveries of the same task, only one goes on;
    run_operation     claim the instance's lock for this worker (refused: the operation records why and
                      nothing runs), keep its heartbeat fresh while the work runs, release it whatever
                      happens. The work records the outcome on its row and returns the final status.

The lock itself was taken when the operation was requested (locks.lock_acquire, in the transaction that
created the row); a lock the reconciler took from a dead worker is claimed by the task it handed the
operation to (`claim` of run_operation). Every claim raises the lock's generation (the fence): writes
of a runner whose lock was taken over find another generation and are refused (locks.Fence).
"""

import logging
from collections.abc import Callable

from django.db import models
from django.utils import timezone

from .locks import Fence, Heartbeat, LockLost, lock_claim

log = logging.getLogger(__name__)


def operation_claim(
    model: type[models.Model],
    operation_id: int,
    *,
    pending: str,
    running: str,
    select_related: tuple[str, ...] = ("instance__node",),
) -> tuple[models.Model | None, bool]:
    """(row, claimed): the row (None when it does not exist) and whether this caller moved it to running."""
    claimed = model.objects.filter(pk=operation_id, status=pending).update(status=running, started_at=timezone.now())
    row = model.objects.select_related(*select_related).filter(pk=operation_id).first()
    if row is None:
        log.warning("%s %s does not exist (any more): nothing to run.", model.__name__, operation_id)
    elif not claimed:
        log.warning("%s %s is %s, not %s: not running it again.", model.__name__, operation_id, row.status, pending)
    return row, bool(claimed)


def run_operation(
    *,
    kind: str,
    row,
    work: Callable[[Heartbeat], str],
    refused: Callable[[], str],
    claim: Callable[[dict], Fence | None] | None = None,
) -> str:
    """Run `work(heartbeat)` holding the lock of `row`'s instance; returns the status `work` (or `refused`)
    returns. `heartbeat.fence` is the claim: the work writes its own records through `fence.write` and
    calls `fence.check()` at its safe points; both raise LockLost once the lock was taken away.

    A LockLost that reaches this point ends the run quietly: whoever took the lock (the reconciler)
    records the outcome, and the lock is left to it."""
    key = {"instance_id": row.instance_id, "kind": kind, "operation_id": row.pk}
    fence = (claim or _claim)(key)
    if fence is None:
        return refused()
    try:
        with Heartbeat(fence) as heartbeat:
            status = work(heartbeat)
    except LockLost as lost:
        log.warning("%s", lost.message)
        return "lock lost"
    except BaseException:
        if not fence.lost.is_set():
            try:
                fence.release()
            except Exception:  # noqa: BLE001 - the first error is the one to report; the reconciler cleans up
                log.exception("%r: could not release the lock after the work failed", fence)
        raise
    fence.release()  # conditional on the generation: a lock taken over meanwhile stays with its taker
    return status


def _claim(key: dict) -> Fence | None:
    return lock_claim(**key)
