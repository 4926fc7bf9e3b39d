"""The dashboard's Spend panel (templates/admin/dashboard/spend.html): spend per day and channel over the last
SPEND_DAYS days as stacked bars (analytics/spend.js, one chart per currency), and today's and this month's spend
per channel in a table, saying how much of it providers reported and how much is estimated."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import template
from django.utils.formats import date_format

from content.models import Channel

from ..spend import SPEND_CACHE_SECONDS, SPEND_DAYS, CurrencySpend, Spend, spend_summary

register = template.Library()

# A colour per channel, the same in every currency's chart.
CHANNEL_COLOURS = {"sms": "#0d6efd", "whatsapp": "#198754", "email": "#fd7e14", "messenger": "#6f42c1"}
CHANNEL_LABELS = dict(Channel.choices)


@register.simple_tag(takes_context=True)
def spend_panel(context: template.Context) -> dict[str, Any] | None:
    """The panel's figures, for people allowed to see messages (None otherwise: the panel is not shown)."""
    request = context.get("request")
    if request is None or not request.user.has_perm("deliveries.view_message"):
        return None
    summary = spend_summary()
    labels = [date_format(day, "M j") for day in summary.days]
    currencies = [
        {
            "code": code,
            "chart_json": json.dumps(_chart(spend, labels)),
            "rows": _rows(spend),
            "totals": _totals(spend),
        }
        for code, spend in sorted(summary.currencies.items())
    ]
    return {
        "days": SPEND_DAYS,
        "currencies": currencies,
        "unpriced": summary.unpriced,
        "cache_seconds": SPEND_CACHE_SECONDS,
    }


def _chart(spend: CurrencySpend, labels: list[str]) -> dict[str, Any]:
    """The chart's data for analytics/spend.js: one series per channel, amounts as numbers (a chart needs no more
    than a float's precision; the table has the exact figures)."""
    return {
        "labels": labels,
        "series": [
            {
                "label": CHANNEL_LABELS.get(channel, channel),
                "color": CHANNEL_COLOURS.get(channel, "#6c757d"),
                "data": [float(amount) for amount in amounts],
            }
            for channel, amounts in spend.daily.items()
        ],
    }


def _rows(spend: CurrencySpend) -> list[dict[str, Any]]:
    channels = [value for value, _ in Channel.choices if value in spend.today or value in spend.month]
    return [
        {
            "label": CHANNEL_LABELS[channel],
            "today": _cells(spend.today.get(channel, Spend())),
            "month": _cells(spend.month.get(channel, Spend())),
        }
        for channel in channels
    ]


def _totals(spend: CurrencySpend) -> dict[str, Any]:
    def total(period: dict[str, Spend]) -> Spend:
        return Spend(
            actual=sum((s.actual for s in period.values()), Decimal(0)),
            estimated=sum((s.estimated for s in period.values()), Decimal(0)),
        )

    return {"today": _cells(total(spend.today)), "month": _cells(total(spend.month))}


def _cells(spend: Spend) -> dict[str, str]:
    # A dash where a part is nothing, so the eye finds the parts that are something.
    return {
        "total": money(spend.total),
        "actual": money(spend.actual) if spend.actual else "–",
        "estimated": money(spend.estimated) if spend.estimated else "–",
    }


def money(amount: Decimal) -> str:
    """Cents once there are whole units; below one, the fractions of a cent a text message costs."""
    if amount == 0:
        return "0"
    return f"{amount:,.2f}" if abs(amount) >= 1 else f"{amount:.4f}"
