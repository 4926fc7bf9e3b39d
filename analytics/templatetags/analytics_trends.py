"""The dashboard's Trends panel (templates/admin/dashboard/trends.html): the chosen range's figures, for the
charts (as JSON for analytics/trends.js) and the table below them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.formats import date_format

from content.models import Channel

from ..selectors import rollup_lag_seconds, rollup_ran_at, trends
from ..trend_ranges import (
    CHANNEL_PARAM,
    FROM_PARAM,
    PRESET_LABELS,
    RANGE_PARAM,
    TO_PARAM,
    TrendsRange,
    TrendsRangeError,
    trends_range_default,
    trends_range_from,
)

register = template.Library()

# The volumes shown, in the charts' and the table's order, with their colours (colour-blind safe where it matters:
# delivered and failed differ in lightness as well as hue).
VOLUMES = {
    "sent": ("Sent", "#0d6efd"),
    "delivered": ("Delivered", "#198754"),
    "undelivered": ("Undelivered", "#fd7e14"),
    "failed": ("Failed", "#b02a37"),
    "bounced": ("Bounced", "#6f42c1"),
    "opened": ("Opened", "#20c997"),
    "clicked": ("Clicked", "#0dcaf0"),
    "opted_out": ("Opted out", "#6c757d"),
}
RATES = {
    "delivery_rate": ("Delivery rate", "#198754"),
    "open_rate": ("Open rate", "#20c997"),
    "click_rate": ("Click rate", "#0dcaf0"),
}
# Past this, the "figures as of" note asks whether the rollup job runs.
LAG_WARNING_SECONDS = 60.0


@register.simple_tag(takes_context=True)
def trends_panel(context: template.Context) -> dict[str, Any] | None:
    """The panel's figures, only for people allowed to see messages (None otherwise: the panel is not shown)."""
    request = context.get("request")
    if request is None or not request.user.has_perm("deliveries.view_message"):
        return None
    now = timezone.now()
    error = None
    try:
        chosen = trends_range_from(request.GET, now=now)
    except TrendsRangeError as wrong:
        error = wrong
        chosen = trends_range_default(now, request.GET)
    figures = trends(chosen.start, chosen.end, bucket=chosen.bucket, channel=chosen.channel)
    rows = [_row(row, chosen.bucket) for row in figures["rows"]]
    return {
        "error": error.message if error else "",
        "error_field": error.field if error else "",
        "chosen": chosen,
        "submitted": {
            "range": request.GET.get(RANGE_PARAM, chosen.key),
            "from": request.GET.get(FROM_PARAM, ""),
            "to": request.GET.get(TO_PARAM, ""),
            "channel": request.GET.get(CHANNEL_PARAM, ""),
        },
        "ranges": PRESET_LABELS.items(),
        "channels": Channel.choices,
        "params": {"range": RANGE_PARAM, "from": FROM_PARAM, "to": TO_PARAM, "channel": CHANNEL_PARAM},
        "title": _title(chosen),
        "volumes": [(metric, label) for metric, (label, _) in VOLUMES.items()],
        "rows": rows,
        "totals": _row(figures["totals"], chosen.bucket, label="Total"),
        "chart_json": _chart_json(rows),
        "as_of": _as_of(now),
    }


def _chart_json(rows: list[dict[str, Any]]) -> str:
    """The charts' data for analytics/trends.js, carried in an attribute (escaped as any): the policy refuses every
    inline script, data blocks included by our own check."""
    return json.dumps(
        {
            "labels": [row["label"] for row in rows],
            "volumes": [
                {"label": label, "color": color, "data": [row["start_counts"][metric] for row in rows]}
                for metric, (label, color) in VOLUMES.items()
            ],
            "rates": [
                {"label": label, "color": color, "data": [row["percent"][rate] for row in rows]}
                for rate, (label, color) in RATES.items()
            ],
        }
    )


def _row(figures: dict[str, Any], bucket: str, *, label: str = "") -> dict[str, Any]:
    if not label:
        at = timezone.localtime(figures["start"])
        label = date_format(at, "M j, H:i" if bucket == "hour" else "D M j")
    percent = {rate: None if figures[rate] is None else round(figures[rate] * 100, 1) for rate in RATES}
    return {
        "label": label,
        "start_counts": {metric: figures[metric] for metric in VOLUMES},
        "counts": [figures[metric] for metric in VOLUMES],
        "percent": percent,
        "rates": [percent[rate] for rate in RATES],
    }


def _title(chosen: TrendsRange) -> str:
    channel = dict(Channel.choices).get(chosen.channel or "", "all channels")
    per = "per hour" if chosen.bucket == "hour" else "per day"
    if chosen.key == "custom":
        start, end = timezone.localtime(chosen.start), timezone.localtime(chosen.end)
        return f"{date_format(start, 'M j, Y H:i')} to {date_format(end, 'M j, Y H:i')}, {channel}, {per}"
    return f"Last {PRESET_LABELS[chosen.key]}, {channel}, {per}"


def _as_of(now: datetime) -> dict[str, Any]:
    """When the figures were counted, how far they trail the timeline, and what to do if they trail too far."""
    lag = rollup_lag_seconds()
    ran_at = rollup_ran_at()
    if lag is None or ran_at is None:
        return {
            "warning": True,
            "text": "The rollups have never run, so these figures are empty: start the dispatcher "
            "(manage.py run_dispatcher) or run manage.py rollup_analytics.",
        }
    text = f"Figures as of {date_format(timezone.localtime(ran_at), 'H:i:s')}"
    if lag <= 0:
        return {"warning": False, "text": f"{text}, up to date."}
    behind = f"{lag:.0f} s" if lag < 120 else f"{lag / 60:.0f} min"
    if lag < LAG_WARNING_SECONDS:
        return {"warning": False, "text": f"{text}, {behind} behind the timeline."}
    return {
        "warning": True,
        "text": f"{text}: {behind} behind the timeline. Is a dispatcher running? "
        "Start one (manage.py run_dispatcher) or run manage.py rollup_analytics.",
    }
