"""Errors the API answers as JSON that DRF would leave to Django's HTML pages (or a 500): a form of too many
fields, a body over Django's cap, JSON nested past Python's recursion limit."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_exception_handler(exc, context):
    """DRF's handler, plus Django's refusals of a request body, answered as JSON 4xx instead of an HTML page."""
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": str(exc) or "The request body is too large."}, status=413)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response({"detail": f"{exc} Send the request as JSON."}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": "The request could not be read."}, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing (400) a document nested deeper than Python's parser recurses."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError("JSON parse error - the document is nested too deeply.") from error
