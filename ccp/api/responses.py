"""Shared API answers."""

from rest_framework import status
from rest_framework.response import Response


def accepted(body: dict) -> Response:
    """202 for queued work, with the row's URL as Location. The URL is made a plain str: DRF's
    Hyperlink is a str subclass that WSGI servers (wsgiref) refuse as a header value."""
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["url"])})
