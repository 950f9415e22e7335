"""The Celery app, configured from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_init
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccp.settings")

app = Celery("ccp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def refuse_to_start_misconfigured(**kwargs) -> None:
    """A worker runs Django's system checks at start, as the web process's commands do: a malformed
    setting (e.g. CCP_ENCRYPTION_KEYS) stops it with the check's message instead of failing a task later."""
    errors = [str(error) for error in run_checks() if error.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(errors))
