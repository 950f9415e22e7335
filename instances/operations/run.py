"""Running an operation: the one sequence every long operation on an instance goes through.

    operation_claim   pending → running on the operation's row, by one conditional update: of two
                      deliveries of the same task, only one goes on;
    run_operation     claim the instance's lock for this worker (refused: the operation records why and
                      nothing runs), keep its heartbeat fresh while the work runs, release it whatever
                      happens. The work records the outcome on its row and returns the final status.

The lock itself was taken when the operation was requested (locks.lock_acquire, in the transaction that
created the row); a lock the reconciler took from a dead worker is claimed by the task it handed the
operation to (`claim` of run_operation).
"""

import logging
from collections.abc import Callable

from django.db import models
from django.utils import timezone

from .locks import Heartbeat, lock_claim, lock_release

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
    claim: Callable[[dict], bool] | None = None,
) -> str:
    """Run `work(heartbeat)` holding the lock of `row`'s instance; returns the status `work` (or `refused`)
    returns. `heartbeat.lost` turns true when the lock was taken away meanwhile (declared stale)."""
    key = {"instance_id": row.instance_id, "kind": kind, "operation_id": row.pk}
    if not (claim or _claim)(key):
        return refused()
    try:
        with Heartbeat(**key) as heartbeat:
            return work(heartbeat)
    finally:
        lock_release(**key)


def _claim(key: dict) -> bool:
    return lock_claim(**key)
