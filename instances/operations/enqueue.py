"""Sending an operation's task: always after the transaction that created its row commits, so the worker
never looks for a row that is not there yet (or was rolled back)."""

from django.db import transaction

from ccp.celery import app


def enqueue_on_commit(task_name: str, *args, task_id: str | None = None) -> None:
    """Send `task_name(*args)` once the current transaction commits (at once outside a transaction).
    Task names are the `name=` of the tasks, so the sender needs no import of the task's module."""
    transaction.on_commit(lambda: app.send_task(task_name, args=list(args), task_id=task_id))
