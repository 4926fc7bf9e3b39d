"""The `Idempotency-Key` header of the create endpoints, answered the same way by each of them.

The service (deliveries.services.idempotency) decides between creating and replaying; this turns its outcome into
HTTP: the answer marked `Idempotent-Replayed: true` for a replay, 400 for a malformed key, 422 for a key used
with another request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from ..services.idempotency import IdempotencyKeyError, IdempotencyKeyInvalid

T = TypeVar("T")


def idempotency_key_parameter(description: str) -> OpenApiParameter:
    """The optional `Idempotency-Key` header as the OpenAPI schema documents it; `description` says what a
    replay of that endpoint answers."""
    return OpenApiParameter(
        "Idempotency-Key", location=OpenApiParameter.HEADER, required=False, description=description
    )


def idempotent_response(
    request: Request,
    *,
    create: Callable[[str | None], tuple[T, bool]],
    respond: Callable[[T, bool], Response],
) -> Response:
    """Answer a create request that may carry an Idempotency-Key.

    `create(key)` gets the header's value (None without one) and returns (result, created), created False for a
    replay; `respond(result, replayed)` builds the answer.
    """
    try:
        result, created = create(request.headers.get("Idempotency-Key"))
    except IdempotencyKeyInvalid as error:
        return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
    except IdempotencyKeyError as error:
        return Response({"detail": str(error)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    response = respond(result, not created)
    if not created:
        response["Idempotent-Replayed"] = "true"
    return response
