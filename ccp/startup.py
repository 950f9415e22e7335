"""Refuse to start with a broken configuration: every process (web, worker, beat) runs Django's system
checks when it starts, as management commands do, so a malformed setting such as CCP_ENCRYPTION_KEYS
stops it with the check's sentence instead of failing the first request or task that needs it."""

from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured


def refuse_to_start_misconfigured(**kwargs) -> None:
    errors = [str(error) for error in run_checks() if error.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(errors))
