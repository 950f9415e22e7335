"""Turn domain errors into HTTP answers with a sentence, never a traceback.

Every API error is JSON: domain errors carry their own status, an outage of the panel's own
infrastructure (its database, its task queue) is a 503 with a sentence, anything unexpected a 500 with
a sentence (the traceback goes to the log). `server_error` does the same for errors raised outside a
DRF view (a middleware), as Django's handler500.
"""

import logging
import sys

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import JsonResponse
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ccp.db import connection_reset
from ccp.errors import CCPError

log = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, CCPError):
        return Response({"detail": exc.message}, status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DataError):
        # Input the database itself refuses (a NUL character in a lookup, a time zone offset PostgreSQL
        # cannot represent): the client's mistake, so a 400 with a sentence, never a 500 (schema fuzzing).
        log.info("Refused a request value the database cannot use: %s", exc)
        return Response(
            {"detail": "A value in the request cannot be used (a NUL character, or a date or number out of range)."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    body, code = _unexpected(exc)
    return Response(body, status=code)


DATABASE_DOWN = "The panel's database is not answering; nothing was changed. Try again in a minute."
BROKER_DOWN = "The panel's task queue (the Celery broker) is not answering; nothing was queued. Try again in a minute."
UNEXPECTED = "The server hit an unexpected error; it was logged. Try again, or tell the panel's administrators."


def _unexpected(exc: BaseException) -> tuple[dict, int]:
    """The answer to an exception nothing else handled: 503 for an infrastructure outage, else 500."""
    if isinstance(exc, OperationalError | InterfaceError):
        log.warning("API request failed, the database does not answer: %s", exc)
        connection_reset()  # the next request on this thread opens a fresh connection
        return {"detail": DATABASE_DOWN}, status.HTTP_503_SERVICE_UNAVAILABLE
    if isinstance(exc, BrokerError | ConnectionError):
        log.warning("API request failed, the broker does not answer: %s", exc)
        return {"detail": BROKER_DOWN}, status.HTTP_503_SERVICE_UNAVAILABLE
    log.error("Unexpected error in an API request", exc_info=exc)
    return {"detail": UNEXPECTED}, status.HTTP_500_INTERNAL_SERVER_ERROR


def server_error(request, *args, **kwargs):
    """handler500: JSON under /api/ (a 503 when the database or broker is down), Django's page elsewhere."""
    if not request.path.startswith("/api/"):
        return defaults.server_error(request, *args, **kwargs)
    exc = sys.exc_info()[1]
    if exc is None:
        return JsonResponse({"detail": UNEXPECTED}, status=500)
    if isinstance(exc, OperationalError | InterfaceError):
        return JsonResponse({"detail": DATABASE_DOWN}, status=503)
    if isinstance(exc, BrokerError | ConnectionError):
        return JsonResponse({"detail": BROKER_DOWN}, status=503)
    return JsonResponse({"detail": UNEXPECTED}, status=500)
