"""What one request may hold: sizes, ranges and time horizons, shared by the API serializers, the admin forms and
the message services, so each path refuses the same input with the same words.

The request body as a whole is capped by MAX_REQUEST_BYTES (messaging_project.request_limits).
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from content.services.sms_segments import MAX_BODY_CHARACTERS

# A JSON object a message or a contact carries (context, metadata, attributes...), serialized as UTF-8.
MAX_JSON_BYTES = 16 * 1024
# Nesting in such an object: deeper than any template needs, shallow enough that no walk over it recurses far.
MAX_JSON_DEPTH = 20
# A text or HTML body (an email's text may be up to a megabyte); SMS and WhatsApp stop at Twilio's 1,600.
MAX_TEXT_CHARACTERS = 1_000_000
MAX_SMS_CHARACTERS = MAX_BODY_CHARACTERS
# How far ahead a send time, a deadline or a delay may reach; and how late a send time may be and still be taken
# as "now" (clock skew, a request retried after a timeout).
HORIZON = timedelta(days=365)
MAX_SECONDS = int(HORIZON.total_seconds())
PAST_TOLERANCE = timedelta(minutes=5)
# Ids are 64-bit database columns: a larger number cannot name a row (and overflows the query).
MAX_ID = 2**63 - 1


# What no text column takes: NUL (PostgreSQL refuses it) and unpaired surrogates (not encodable as UTF-8).
_REFUSED_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _string_problem(text: str) -> str | None:
    found = _REFUSED_CHARACTER.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return "contains an unpaired surrogate character"


def _value_problem(value: Any, depth: int) -> str | None:
    if depth > MAX_JSON_DEPTH:
        return f"is nested more than {MAX_JSON_DEPTH} levels deep"
    if isinstance(value, str):
        return _string_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "contains NaN or Infinity, which JSON cannot store"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = (_string_problem(key) if isinstance(key, str) else None) or _value_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = _value_problem(item, depth + 1)
            if problem:
                return problem
    return None


def json_value_problem(value: Any, *, max_bytes: int = MAX_JSON_BYTES) -> str | None:
    """Why `value` cannot be stored as a JSON column (NUL or surrogate characters, which PostgreSQL refuses; NaN;
    too deep; over `max_bytes` serialized), as the end of a sentence, or None if it can."""
    problem = _value_problem(value, 0)
    if problem:
        return problem
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())
    if size > max_bytes:
        return f"is {size:,} bytes as JSON; the limit is {max_bytes:,}"
    return None


@deconstructible
class JsonWithinLimits:
    """A validator (forms, serializers) refusing what json_value_problem finds."""

    def __init__(self, max_bytes: int = MAX_JSON_BYTES):
        self.max_bytes = max_bytes

    def __call__(self, value: Any) -> None:
        problem = json_value_problem(value, max_bytes=self.max_bytes)
        if problem:
            raise ValidationError(f"This value {problem}.", code="json_limits")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonWithinLimits) and other.max_bytes == self.max_bytes


def text_problem(text: str, *, max_characters: int = MAX_TEXT_CHARACTERS) -> str | None:
    """Why `text` cannot be stored (too long, NUL or surrogate characters), or None."""
    if len(text) > max_characters:
        return f"is {len(text):,} characters; the limit is {max_characters:,}"
    return _string_problem(text)
