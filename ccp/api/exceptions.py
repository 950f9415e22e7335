"""Turn domain errors into HTTP answers with a sentence, never a traceback."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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
    return drf_exception_handler(exc, context)
