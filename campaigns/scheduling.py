"""When a campaign's messages go out: local times, quiet hours, pacing for a rate limit, cron occurrences.

Pure functions of times and zones (no database), so the rules are easy to read and to test with any clock.
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


def in_quiet_hours(moment: datetime, *, start: time, end: time, zone: zoneinfo.ZoneInfo) -> bool:
    local = moment.astimezone(zone).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight, like 21:00-08:00


def after_quiet_hours(moment: datetime, *, start: time, end: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """`moment`, or the end of the quiet hours (local time in `zone`) when it falls inside them."""
    if not in_quiet_hours(moment, start=start, end=end, zone=zone):
        return moment
    local = moment.astimezone(zone)
    day = local.date()
    if start > end and local.time() >= start:
        day += timedelta(days=1)  # in the evening part of an overnight window: it ends tomorrow morning
    return datetime.combine(day, end, tzinfo=zone)


def paced(base: datetime, *, position: int, per_minute: int) -> datetime:
    """The time of the `position`-th message (from 0) of a group starting at `base`, at `per_minute` a minute."""
    return base + timedelta(seconds=position * 60.0 / per_minute)


def cron_is_valid(expression: str) -> bool:
    return bool(expression.strip()) and croniter.is_valid(expression)


def cron_next(expression: str, *, after: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first occurrence of the cron `expression`, read as wall-clock time in `zone`, strictly after `after`."""
    return croniter(expression, after.astimezone(zone)).get_next(datetime)
