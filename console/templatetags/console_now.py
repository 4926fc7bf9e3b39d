"""The dashboard's "Now" panel (templates/admin/dashboard/now.html) and the few filters its figures need."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template
from django.conf import settings

from ..services.now import COUNT_CAP, now_snapshot

register = template.Library()


@register.simple_tag(takes_context=True)
def console_now(context: dict[str, Any]) -> dict[str, Any] | None:
    """The panel's figures, only for people allowed to see messages; None hides the panel."""
    request = context.get("request")
    if request is None or not request.user.has_perm("deliveries.view_message"):
        return None
    snapshot = now_snapshot()
    throughput = snapshot["throughput"]
    return {
        **snapshot,
        "cache_seconds": settings.DASHBOARD_CACHE_SECONDS,
        "may_monitor": request.user.has_perm("console.view_queue_monitor"),
        # For the chart's script (json_script escapes it): minutes as HH:MM in UTC, series by channel.
        "chart": {
            "labels": [minute.strftime("%H:%M") for minute in throughput["minutes"]],
            "sent": throughput["sent"],
            "failed": throughput["failed"],
        },
    }


@register.filter
def capped(count: int) -> str:
    """A count from a capped query: "100,000+" at the cap."""
    return f"{count:,}+" if count >= COUNT_CAP else f"{count:,}"


@register.filter
def age(seconds: float | None) -> str:
    """Seconds as a person reads an age: 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if seconds is None:
        return "—"
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


@register.filter
def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


@register.filter
def megabytes(size: int | None) -> str:
    return "no limit" if not size else f"{size / 1_048_576:,.1f} MB"


@register.filter
def lookup(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)


@register.filter
def epoch_time(timestamp: float | None) -> str:
    """A Unix time as HH:MM:SS in UTC (breakers keep their times so)."""
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%H:%M:%S")
