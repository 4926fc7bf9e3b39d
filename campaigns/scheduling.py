"""When a campaign's messages go out: local times, pacing for a rate limit, cron occurrences.

Pure functions of times and zones (no database), so the rules are easy to read and to test with any clock. The
quiet hours' rules are the guard's (guard.services.quiet_hours), shared with single messages.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta

from croniter import croniter
from django.conf import settings


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The time zone `name`, or the server's TIME_ZONE when `name` is empty."""
    return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)


def next_local_time(*, at: time, on: date | None, zone: zoneinfo.ZoneInfo, now: datetime) -> datetime:
    """The moment the clock in `zone` shows `at` on the day `on` (or today there, when `on` is None).

    If that moment has already passed when asked (the campaign was launched after 09:00 in that zone), it is
    the same time on the following day: nobody gets a "09:00" message in the afternoon.
    """
    day = on or now.astimezone(zone).date()
    moment = datetime.combine(day, at, tzinfo=zone)
    while moment < now:
        day += timedelta(days=1)
        moment = datetime.combine(day, at, tzinfo=zone)
    return moment


def paced(base: datetime, *, position: int, per_minute: int) -> datetime:
    """The time of the `position`-th message (from 0) of a group starting at `base`, at `per_minute` a minute."""
    return base + timedelta(seconds=position * 60.0 / per_minute)


def cron_is_valid(expression: str) -> bool:
    return bool(expression.strip()) and croniter.is_valid(expression)


def cron_next(expression: str, *, after: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first occurrence of the cron `expression`, read as wall-clock time in `zone`, strictly after `after`."""
    return croniter(expression, after.astimezone(zone)).get_next(datetime)
