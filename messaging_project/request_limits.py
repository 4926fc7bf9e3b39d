"""The cap on request bodies (MAX_REQUEST_BYTES), answered as JSON 413 before anything reads the body.

DRF's parsers read the request stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE never applies to the API;
this middleware stands first and refuses by the declared Content-Length, which costs one header look-up. Django's
WSGI handler reads at most Content-Length bytes, so a chunked body without one would be read as empty: it is
refused too (411) rather than taken as an empty request.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse


def request_body_refusal(meta: dict) -> JsonResponse | None:
    """The 4xx answer for a body that is too big or of unknown size, or None for a body within the cap."""
    declared = meta.get("CONTENT_LENGTH")
    if not declared:
        if meta.get("HTTP_TRANSFER_ENCODING", "").lower().strip() == "chunked":
            return JsonResponse(
                {"detail": "Send the request body with a Content-Length header; chunked bodies are not accepted."},
                status=411,
            )
        return None
    try:
        size = int(declared)
    except ValueError:
        size = -1
    if size < 0:
        return JsonResponse({"detail": "The Content-Length header is not a number of bytes."}, status=400)
    limit = settings.MAX_REQUEST_BYTES
    if size > limit:
        return JsonResponse(
            {
                "detail": f"The request body is {size:,} bytes; the limit is {limit:,} bytes (MAX_REQUEST_BYTES).",
                "limit_bytes": limit,
            },
            status=413,
        )
    return None


class RequestBodyLimitMiddleware:
    """Refuses request bodies over MAX_REQUEST_BYTES (413) before a view or parser reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return request_body_refusal(request.META) or self.get_response(request)
