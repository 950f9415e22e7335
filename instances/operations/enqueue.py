"""Sending an operation's task: always after the transaction that created its row commits, so the worker
never looks for a row that is not there yet (or was rolled back).

No phantom operations: a request made while the broker is down must not leave a row and a lock behind
that no task will ever run (every later request would be refused with 409 until someone cancelled it).

- `enqueue_on_commit` first checks, inside the request's transaction, that the broker takes a
  connection: when it does not, BrokerUnavailable (503) rolls the whole request back — no row, no lock.
- The send itself still happens after the commit. Should it fail there (the broker went away in
  between), `withdraw` deletes the row and the lock that were just committed, before the error reaches
  the caller: the outcome is the same 503 with nothing left behind.
"""

import logging
from collections.abc import Callable

from django.db import transaction

from ccp.celery import app
from ccp.errors import CCPError

from .locks import lock_release

log = logging.getLogger(__name__)

# A request should not hang on a broker that is down: one quick retry, then the 503.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CONNECT_TIMEOUT = 3


class BrokerUnavailable(CCPError):
    """The task queue (the Celery broker) does not answer: nothing was queued."""

    http_status = 503


def _unavailable(error: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable(
        f"The task queue (the Celery broker) is not answering, so nothing was queued and nothing was "
        f"changed; try again once it is back ({type(error).__name__}: {error})."
    )


def broker_check() -> None:
    """Raise BrokerUnavailable unless the broker takes a connection now."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5, timeout=CONNECT_TIMEOUT)
    except Exception as error:  # noqa: BLE001 - any failure to reach the broker means the same to the caller
        raise _unavailable(error) from error


def enqueue_on_commit(
    task_name: str, *args, task_id: str | None = None, withdraw: Callable[[], None] | None = None
) -> None:
    """Send `task_name(*args)` once the current transaction commits (at once outside a transaction).
    Task names are the `name=` of the tasks, so the sender needs no import of the task's module.

    Raises BrokerUnavailable at once when the broker is down (the caller's transaction then rolls back);
    when the send after the commit fails, `withdraw()` undoes what was committed, then the error is raised."""
    broker_check()

    def send() -> None:
        try:
            app.send_task(task_name, args=list(args), task_id=task_id, retry=True, retry_policy=PUBLISH_RETRY)
        except Exception as error:  # noqa: BLE001 - see broker_check
            log.warning("Could not queue %s%s: %s", task_name, tuple(args), error)
            if withdraw is not None:
                withdraw()
            raise _unavailable(error) from error

    transaction.on_commit(send)


def operation_withdraw(*, model, operation_id: int, pending: str, instance_id: int, kind: str) -> None:
    """Undo a request whose task could not be sent: its lock and its (still pending) row go."""
    with transaction.atomic():
        lock_release(instance_id=instance_id, kind=kind, operation_id=operation_id)
        model.objects.filter(pk=operation_id, status=pending).delete()
