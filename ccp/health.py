"""/healthz: is the database answering, is the broker answering."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from ccp.celery import app


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure means "not answering"; the reason is shown
        return f"error: {exc.__class__.__name__}: {exc}"


def _broker() -> str:
    try:
        with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}: {exc}"


def healthz(request):
    checks = {"database": _database(), "broker": _broker()}
    failing = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ok" if not failing else f"unavailable: {', '.join(failing)}", **checks}
    return JsonResponse(body, status=503 if failing else 200)
