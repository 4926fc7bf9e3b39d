"""Quiet hours: when a message must not wake its recipient, and when it may go instead (docs/guard.md).

The pure time rules (`in_quiet_hours`, `after_quiet_hours`) serve campaigns (their own quiet hours, in each
contact's zone) and single messages (the QUIET_HOURS settings, in the recipient's zone from the phone number).
They live here, below deliveries and campaigns, so that both use the same rules.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from phonenumbers import timezone as phone_zones

from .phone_numbers import phone_number_parse

# "21:00-08:00" (a hyphen or an en dash between the two times, spaces allowed around it).
WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")
# Channels whose recipient is a phone number, whose zone phonenumbers knows.
PHONE_CHANNELS = frozenset({"sms", "whatsapp"})
UNKNOWN_ZONE = "Etc/Unknown"  # phonenumbers' answer for a number it cannot place


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


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class Deferral:
    """A message due inside its recipient's quiet hours: when it goes instead, and why (for its timeline)."""

    until: datetime  # aware, UTC
    zone: zoneinfo.ZoneInfo  # the zone whose quiet hours end last
    window: QuietHours

    def describe(self) -> str:
        local = self.until.astimezone(self.zone)
        return (
            f"Deferred to {local:%H:%M} {self.zone.key}: quiet hours {self.window.describe()} "
            "for the recipient's local time."
        )


def quiet_hours_parse(value: str, *, name: str = "quiet hours") -> QuietHours | None:
    """ "21:00-08:00" as QuietHours, "" as None (off). Raises ValueError naming `name` otherwise."""
    if not value.strip():
        return None
    found = WINDOW.match(value)
    try:
        if found is None:
            raise ValueError
        start = time(int(found[1]), int(found[2]))
        end = time(int(found[3]), int(found[4]))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a window like 21:00-08:00.") from None
    if start == end:
        raise ValueError(f"{name} {value!r} starts and ends at the same time.")
    return QuietHours(start=start, end=end)


@cache
def quiet_hours_setting(*, transactional: bool) -> QuietHours | None:
    """QUIET_HOURS (or QUIET_HOURS_TRANSACTIONAL), read once per process: None when off, so that a message costs
    nothing more than this lookup. A bad value stops the process at the first message rather than being ignored."""
    name = "QUIET_HOURS_TRANSACTIONAL" if transactional else "QUIET_HOURS"
    try:
        return quiet_hours_parse(getattr(settings, name, "") or "", name=name)
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from None


@cache
def default_zone() -> zoneinfo.ZoneInfo:
    """QUIET_HOURS_DEFAULT_TIMEZONE, else TIME_ZONE: the zone of recipients whose own is unknown (email, Messenger,
    a number phonenumbers cannot place)."""
    name = getattr(settings, "QUIET_HOURS_DEFAULT_TIMEZONE", "") or settings.TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(f"QUIET_HOURS_DEFAULT_TIMEZONE {name!r} is not an IANA time zone.") from None


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("QUIET_HOURS") or setting == "TIME_ZONE":
        quiet_hours_setting.cache_clear()
        default_zone.cache_clear()


def recipient_zones(*, channel: str, recipient: str) -> tuple[zoneinfo.ZoneInfo, ...]:
    """The time zones the recipient may be in: the phone number's (one, or several for a range that spans
    zones), else the default zone."""
    if channel in PHONE_CHANNELS:
        number = phone_number_parse(recipient.removeprefix("whatsapp:"))
        if number is not None:
            names = phone_zones.time_zones_for_number(number)
            zones = tuple(zone for zone in map(_zone, names) if zone is not None)
            if zones:
                return zones
    return (default_zone(),)


@cache
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    if name == UNKNOWN_ZONE:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None  # a zone phonenumbers knows and this system's tz database does not: the others will do


def quiet_hours_deferral(
    *, window: QuietHours, moment: datetime, zones: tuple[zoneinfo.ZoneInfo, ...]
) -> Deferral | None:
    """None when `moment` is outside the quiet hours in every zone; else the first moment after it that is outside
    them in all (so that no zone the number may be in is woken), and the zone whose quiet hours end then.

    When the zones are so far apart that no hour is outside the quiet hours in all of them, it is the end of the
    quiet hours that ends last among those `moment` falls in.
    """
    at = moment.astimezone(UTC)
    first: Deferral | None = None
    found: Deferral | None = None
    # Each round moves to the latest end among the zones still quiet; it never passes the first moment open in
    # every zone, and each zone has at most three ends within the day and a bit that can take.
    for _ in range(3 * len(zones) + 1):
        latest: Deferral | None = None
        for zone in zones:
            if in_quiet_hours(at, start=window.start, end=window.end, zone=zone):
                end = after_quiet_hours(at, start=window.start, end=window.end, zone=zone).astimezone(UTC)
                if latest is None or end >= latest.until:  # a tie names the zone phonenumbers lists last
                    latest = Deferral(until=end, zone=zone, window=window)
        if latest is None:
            return found
        first = first or latest
        found, at = latest, latest.until
    return first
