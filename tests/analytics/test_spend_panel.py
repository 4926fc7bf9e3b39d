"""The dashboard's Spend panel (issue #24, "the dashboard shows spend per day and channel"): sums per day, channel
and currency, the provider's price where known and the estimate otherwise, and the panel drawn from them."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from analytics.spend import SPEND_DAYS, spend_summary
from deliveries.models import Status
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # month started 6 days ago; the 30 days start on November 8


def sent(*, at: datetime, channel: str = "sms", estimate: str | None = None, actual: str | None = None, currency="USD"):
    return MessageFactory(
        channel=channel,
        recipient="ada@example.com" if channel == "email" else "+14155550100",
        status=Status.DELIVERED,
        sent_at=at,
        estimated_cost=None if estimate is None else Decimal(estimate),
        cost_currency="" if estimate is None else currency,
        actual_cost=None if actual is None else Decimal(actual),
        actual_cost_currency="" if actual is None else currency,
    )


@pytest.fixture
def spending():
    today, yesterday = NOW - timedelta(hours=2), NOW - timedelta(days=1)
    sent(at=today, estimate="0.0079", actual="0.0075")  # reported: 0.0075 counts, not the estimate
    sent(at=today, estimate="0.0158")  # not reported yet: the estimate
    sent(at=today, channel="whatsapp", estimate="0.0400", actual="0.0360")
    sent(at=today, channel="email", estimate="0.0010", currency="EUR")  # another currency, kept apart
    sent(at=yesterday, estimate="0.0079", actual="0.0080")
    sent(at=yesterday, channel="email", estimate="0.0010", currency="EUR")
    sent(at=NOW - timedelta(days=10), estimate="1.0000")  # November 27: in the 30 days, not this month
    sent(at=NOW - timedelta(days=40), estimate="5.0000")  # before both
    sent(at=NOW - timedelta(days=6, hours=14), estimate="0.5000")  # December 1, 01:00: this month, day 24 of 30
    sent(at=today)  # no price at all: counted apart
    MessageFactory(status=Status.QUEUED, estimated_cost=Decimal("9"), cost_currency="USD")  # not sent: costs nothing


def test_spend_sums_per_day_and_channel_the_reported_price_where_known_and_the_estimate_otherwise(spending):
    summary = spend_summary(now=NOW)
    assert len(summary.days) == SPEND_DAYS and summary.days[-1] == NOW.date()
    assert set(summary.currencies) == {"USD", "EUR"}
    usd = summary.currencies["USD"]
    sms = usd.daily["sms"]
    assert sms[-1] == Decimal("0.0075") + Decimal("0.0158")
    assert sms[-2] == Decimal("0.0080")
    assert sms[-11] == Decimal("1.0000")
    assert sms[-7] == Decimal("0.5000")
    assert sum(sms) == Decimal("1.5313")  # the 40-day-old message is outside
    assert usd.daily["whatsapp"][-1] == Decimal("0.0360") and sum(usd.daily["whatsapp"]) == Decimal("0.0360")
    assert "email" not in usd.daily
    assert summary.currencies["EUR"].daily["email"][-2:] == [Decimal("0.0010"), Decimal("0.0010")]
    assert summary.unpriced == 1


def test_today_and_this_month_say_how_much_was_reported_and_how_much_estimated(spending):
    usd = spend_summary(now=NOW).currencies["USD"]
    assert (usd.today["sms"].actual, usd.today["sms"].estimated) == (Decimal("0.0075"), Decimal("0.0158"))
    assert (usd.month["sms"].actual, usd.month["sms"].estimated) == (Decimal("0.0155"), Decimal("0.5158"))
    assert usd.month["sms"].total == Decimal("0.5313")
    assert (usd.today["whatsapp"].actual, usd.today["whatsapp"].estimated) == (Decimal("0.0360"), Decimal("0"))
    eur = spend_summary(now=NOW).currencies["EUR"]
    assert (eur.today["email"].estimated, eur.month["email"].estimated) == (Decimal("0.0010"), Decimal("0.0020"))


def test_the_month_reaches_back_past_the_chart_on_its_last_days():
    end_of_month = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    sent(at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC), estimate="2.0000")  # 30 days ago: before the chart's 30 days
    summary = spend_summary(now=end_of_month)
    usd = summary.currencies["USD"]
    assert usd.month["sms"].total == Decimal("2.0000")
    assert usd.daily == {}


def staff_client(client, *, may_view_messages: bool = True):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    if may_view_messages:
        user.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(user)
    return client


def test_the_dashboard_shows_a_chart_and_a_table_per_currency(client):
    now = timezone.now()
    sent(at=now, estimate="0.0079", actual="0.0075")
    sent(at=now, estimate="0.0158")
    sent(at=now, channel="whatsapp", estimate="0.0400")
    sent(at=now, channel="email", estimate="0.0010", currency="EUR")
    sent(at=now)
    page = staff_client(client).get("/admin/").content.decode()
    assert 'id="tidings-spend"' in page and "analytics/spend.js" in page
    charts = {
        currency: json.loads(html.unescape(data))
        for data, currency in re.findall(r'<canvas data-chart="([^"]*)" data-currency="([A-Z]{3})"', page)
    }
    assert set(charts) == {"EUR", "USD"}
    assert len(charts["USD"]["labels"]) == SPEND_DAYS
    assert [(s["label"], s["data"][-1]) for s in charts["USD"]["series"]] == [("SMS", 0.0233), ("WhatsApp", 0.04)]
    assert [(s["label"], s["data"][-1]) for s in charts["EUR"]["series"]] == [("Email", 0.001)]
    usd_table = re.search(r'id="tidings-spend-USD".*?</table>', page, re.S).group(0)
    rows = [re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", usd_table, re.S)]
    by_channel = {cells[0]: cells[1:4] for cells in rows if cells and cells[0] in ("SMS", "WhatsApp", "All channels")}
    # Today: total, reported, estimated.
    assert by_channel == {
        "SMS": ["0.0233", "0.0075", "0.0158"],
        "WhatsApp": ["0.0400", "–", "0.0400"],
        "All channels": ["0.0633", "0.0075", "0.0558"],
    }
    assert "1 sent message had no price at all" in page


def test_without_priced_sends_the_panel_says_how_to_get_figures(client):
    page = staff_client(client).get("/admin/").content.decode()
    assert "No priced message sent in the last 30 days" in page and "<canvas data-chart" not in page


def test_the_panel_is_only_for_staff_who_may_see_messages(client):
    sent(at=timezone.now(), estimate="0.0079")
    page = staff_client(client, may_view_messages=False).get("/admin/").content.decode()
    assert 'id="tidings-spend"' not in page


def test_the_dashboard_answers_with_its_spend_panel_while_the_cache_redis_is_down(client, settings, spending):
    # django-redis raises its own ConnectionInterrupted (not a RedisError) when Redis does not answer.
    down = {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    staff_client(client)
    settings.CACHES = {"default": down}
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "Spend per day (USD)" in response.content.decode()
