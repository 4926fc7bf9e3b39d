"""The message list as CSV: the rows the list's filters and search select, streamed, at most EXPORT_MAX_ROWS."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from ..models import Message

# An export is for a person to read or a spreadsheet to open; a larger one is a database job, not an admin page.
EXPORT_MAX_ROWS = 100_000
COLUMNS = [
    "id",
    "created_at",
    "channel",
    "status",
    "recipient",
    "sender",
    "category",
    "campaign_id",
    "batch_id",
    "provider",
    "provider_message_id",
    "attempts",
    "last_error_code",
    "last_error_message",
    "sent_at",
    "delivered_at",
    "failed_at",
    "opens_count",
    "clicks_count",
    "subject",
]
# Free text someone else wrote (a subject, a provider's error) could start with a formula; a spreadsheet would run
# it. Such a cell gets a leading apostrophe. So does a recipient, unless it is a phone number (E.164 starts with
# "+"): an email address's local part may start with "=" or "-".
FREE_TEXT = {"sender", "last_error_message", "subject", "provider_message_id", "last_error_code"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PHONE_NUMBER = re.compile(r"\+[0-9]{6,15}")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(name: str, value) -> object:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and (name in FREE_TEXT or (name == "recipient" and not PHONE_NUMBER.fullmatch(value)))
    ):
        return "'" + value
    return value


def export_rows(messages: QuerySet[Message]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    rows = messages.order_by("-created_at", "-id").values_list(*COLUMNS)[:EXPORT_MAX_ROWS]
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow([_cell(name, value) for name, value in zip(COLUMNS, row, strict=True)])


def export_response(messages: QuerySet[Message]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(export_rows(messages), content_type="text/csv; charset=utf-8")
    name = f"messages-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
