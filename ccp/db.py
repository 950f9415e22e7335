"""The one way to drop a database connection that an outage may have broken."""

from django.db import connection


def connection_reset() -> None:
    """Drop this thread's connection (it may be broken): the next query opens a new one. Inside a
    transaction the connection is only marked for rollback (Django refuses to close it there)."""
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - closing a dead socket may fail; the connection is dropped either way
        if not connection.in_atomic_block:
            connection.connection = None
