"""Database writes of a running operation that ride out a short outage of the database.

A worker's connection does not come back by itself: after a restart of PostgreSQL (or a
`pg_terminate_backend`) every later query on it fails. `db_retry` closes the broken connection,
waits and tries again — bounded by `CCP_DB_RETRY_SECONDS` — so the true outcome of the work on the node
is recorded once the database answers again, instead of being lost with the first error.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from ccp.db import connection_reset
from ccp.errors import CCPError

__all__ = ["OUTAGE", "DatabaseUnavailable", "connection_reset", "db_retry"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a lost connection or a database that does not answer raises; never a constraint or a data error.
OUTAGE = (OperationalError, InterfaceError)


class DatabaseUnavailable(CCPError):
    """The database did not answer within the retry window."""

    http_status = 503


def db_retry(fn: Callable[[], T], *, what: str, seconds: float | None = None) -> T:
    """`fn()`, again after each database outage error until it succeeds or `seconds` (default
    CCP_DB_RETRY_SECONDS) have passed; then DatabaseUnavailable. Inside a transaction of the caller
    nothing can be retried (the transaction is gone), so the error goes up unchanged there."""
    budget = settings.CCP_DB_RETRY_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + budget
    delay = 0.5
    while True:
        try:
            return fn()
        except OUTAGE as error:
            if connection.in_atomic_block:
                raise
            connection_reset()
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailable(
                    f"The database did not answer for {budget:.0f} s while recording {what}: {error}".strip()
                ) from error
            log.warning("Database error while recording %s (retrying in %.1f s): %s", what, delay, error)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
