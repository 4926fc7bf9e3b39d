"""The message page's parts: its timeline (also as JSON for the page's refresh), links from error codes to the
provider's documentation, times shown to the second, and which fields are worth a line."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from ..models import Message, MessageEvent, Status
from ..state import FINAL_STATUSES

# The statuses after which nothing changes on its own: the page stops refreshing. A message needing review waits
# for a person, who reloads the page after deciding.
SETTLED_STATUSES = frozenset({*FINAL_STATUSES, Status.REVIEW})
SECONDS_FORMAT = "Y-m-d H:i:s"

STATUS_COLOURS: dict[str, str] = {
    Status.SCHEDULED: "#6c757d",
    Status.QUEUED: "#0d6efd",
    Status.SENDING: "#6610f2",
    Status.SENT: "#198754",
    Status.DELIVERED: "#146c43",
    Status.UNDELIVERED: "#dc3545",
    Status.FAILED: "#dc3545",
    Status.CANCELLED: "#adb5bd",
    Status.SUPPRESSED: "#fd7e14",
    Status.REVIEW: "#d63384",
    Status.WAITING: "#0dcaf0",
    Status.PAUSED: "#adb5bd",
    Status.HELD: "#b35c00",
}


# Where each provider documents its error codes: a page per code, or one page listing them all.
ERROR_CODE_DOCS = {
    "twilio": "https://www.twilio.com/docs/api/errors/{code}",
    "messenger": "https://developers.facebook.com/docs/messenger-platform/error-codes",
    "postmark": "https://postmarkapp.com/developer/api/bounce-api#bounce-types",
}


def error_code_url(provider: str, code: str) -> str | None:
    """The provider's documentation of `code`, or None for our own codes (suppressed, expired…) and unknown ones."""
    template = ERROR_CODE_DOCS.get(provider)
    if template is None or not code.isdigit():
        return None
    return template.format(code=code)


def error_code_link(provider: str, code: str) -> str:
    url = error_code_url(provider, code)
    if url is None:
        return format_html("{}", code)
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, code)


def with_seconds(moment, *, short: bool = False) -> str:
    """A date and time to the second; `short` leaves out this year's year (for the list's narrow column)."""
    if not moment:
        return "—"
    moment = timezone.localtime(moment)
    this_year = moment.year == timezone.localdate().year
    return date_format(moment, "M j, H:i:s" if short and this_year else SECONDS_FORMAT)


def seconds_display(field_name: str):
    """An admin display of a date-time field to the second (the admin's own format drops seconds)."""
    label = getattr(Message._meta.get_field(field_name), "verbose_name", field_name)

    @admin.display(description=str(label)[:1].upper() + str(label)[1:])
    def show(model_admin, obj):
        return with_seconds(getattr(obj, field_name))

    return show


def is_empty(obj: Model, name: str) -> bool:
    """A field with nothing to say: shown on the page only when it has a value."""
    try:
        field = obj._meta.get_field(name)
    except Exception:  # a display method (status, suppression…), always shown
        return False
    value = getattr(obj, getattr(field, "attname", name))
    return value in (None, "", [], {}) or (name in ("attempts", "opens_count", "clicks_count") and value == 0)


def status_badge(status: str, label: str):
    colour = STATUS_COLOURS.get(status, "#6c757d")
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px">{}</span>',
        colour,
        label,
    )


def fieldsets_with_values(fieldsets: list, obj: Message) -> list:
    """The fieldsets with only the fields that have something to say, and without the sets left empty."""
    shown = []
    for title, options in fieldsets:
        fields = [name for name in options["fields"] if not _says_nothing(obj, name)]
        if fields:
            shown.append((title, {**options, "fields": fields}))
    return shown


def _says_nothing(obj: Message, name: str) -> bool:
    if name == "dependency":
        return obj.depends_on_id is None
    if name == "dependents_list":
        return not obj.dependents.exists()
    if name == "error_code":
        return not obj.last_error_code
    return is_empty(obj, name.removesuffix("_s"))


def timeline_events(message_id: int) -> list[MessageEvent]:
    return list(MessageEvent.objects.filter(message_id=message_id).order_by("created_at", "id"))


def timeline_html(message: Message, colours: dict[str, str]) -> str:
    # Milliseconds on the timeline: a send and its provider's answer are often within the same second.
    events: list[dict[str, Any]] = [
        {
            "event": event,
            "colour": colours.get(event.to_status, "#6c757d"),
            "when": date_format(timezone.localtime(event.created_at), "Y-m-d H:i:s.u")[:23],
        }
        for event in timeline_events(message.pk)
    ]
    for item in events:
        item["code"] = error_code_link(message.provider, item["event"].code) if item["event"].code else ""
    return render_to_string("admin/deliveries/message/timeline.html", {"events": events})


def timeline_state(message: Message, colours: dict[str, str]) -> dict[str, Any]:
    """What the page's refresh needs: the status and whether it is settled, and the timeline's HTML."""
    return {
        "status": message.status,
        "status_label": message.get_status_display(),
        "settled": message.status in SETTLED_STATUSES,
        "html": timeline_html(message, colours),
    }
