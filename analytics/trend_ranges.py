"""The Trends panel's choice of range and channel, read from the page's query string and checked.

Preset ranges end now; a custom one runs from a date (or date and time) to another, in the site's time zone, a date
alone meaning that whole day. Up to 48 hours is shown per hour, longer per day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from content.models import Channel

PRESETS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
PRESET_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days", "custom": "Custom"}
DEFAULT_RANGE = "24h"
MAX_CUSTOM_RANGE = timedelta(days=366)
HOURLY_UP_TO = timedelta(hours=48)
# The query string's names: the panel shares the admin index's URL with the other panels.
RANGE_PARAM, FROM_PARAM, TO_PARAM, CHANNEL_PARAM = "trends_range", "trends_from", "trends_to", "trends_channel"


class TrendsRangeError(ValueError):
    """A choice the panel cannot show, with the field it is about and what to do instead."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TrendsRange:
    key: str  # one of PRESET_LABELS
    start: datetime
    end: datetime
    channel: str | None
    from_text: str = ""
    to_text: str = ""

    @property
    def bucket(self) -> str:
        return "hour" if self.end - self.start <= HOURLY_UP_TO else "day"


def trends_range_default(now: datetime, params: Mapping[str, str] | None = None) -> TrendsRange:
    """The last 24 hours, on the channel `params` ask for if it is one: what is shown when a choice is wrong."""
    channel = (params or {}).get(CHANNEL_PARAM) or None
    channel = channel if channel in Channel.values else None
    return TrendsRange(key=DEFAULT_RANGE, start=now - PRESETS[DEFAULT_RANGE], end=now, channel=channel)


def trends_range_from(params: Mapping[str, str], *, now: datetime) -> TrendsRange:
    """The range and channel `params` ask for (the default: the last 24 hours, all channels). Raises
    TrendsRangeError naming the field that is wrong."""
    key = params.get(RANGE_PARAM, "") or DEFAULT_RANGE
    channel = params.get(CHANNEL_PARAM, "") or None
    if channel is not None and channel not in Channel.values:
        raise TrendsRangeError(CHANNEL_PARAM, f"Unknown channel; choose one of {', '.join(Channel.values)}, or all.")
    if key in PRESETS:
        return TrendsRange(key=key, start=now - PRESETS[key], end=now, channel=channel)
    if key != "custom":
        raise TrendsRangeError(RANGE_PARAM, "Unknown range; choose 24 hours, 7 days, 30 days or custom.")
    from_text, to_text = params.get(FROM_PARAM, "").strip(), params.get(TO_PARAM, "").strip()
    start = _moment(from_text, FROM_PARAM, "From", end_of_day=False)
    end = _moment(to_text, TO_PARAM, "To", end_of_day=True)
    if end <= start:
        raise TrendsRangeError(TO_PARAM, "To must be after From.")
    if end - start > MAX_CUSTOM_RANGE:
        raise TrendsRangeError(TO_PARAM, f"A custom range is at most {MAX_CUSTOM_RANGE.days} days; shorten it.")
    return TrendsRange(key=key, start=start, end=end, channel=channel, from_text=from_text, to_text=to_text)


def _moment(text: str, field: str, label: str, *, end_of_day: bool) -> datetime:
    """A date (its start, or with `end_of_day` the start of the next day) or a date and time, in the site's zone."""
    if not text:
        raise TrendsRangeError(field, f"{label} is required for a custom range (a date, as 2026-12-01).")
    try:
        # A date first: Python's ISO parser takes a date alone for its midnight, not for the whole day.
        day = parse_date(text)
        parsed = _day_start(day + timedelta(days=1) if end_of_day else day) if day else parse_datetime(text)
        if parsed is None:
            raise ValueError(text)
        moment = parsed
        if not 1900 <= moment.year <= 2999:  # far from datetime's limits, which a day's step would overflow
            raise ValueError(text)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment
    except (ValueError, OverflowError):
        raise TrendsRangeError(field, f"{label} is not a date: write it as 2026-12-01 or 2026-12-01T09:30.") from None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())
