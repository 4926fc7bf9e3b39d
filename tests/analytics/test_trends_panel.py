"""The dashboard's Trends panel: its figures against counts over the timeline, its choices, escaping, access."""

import html
import json
import re
from datetime import UTC, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from analytics import selectors
from analytics.services.rollup import analytics_rollup
from deliveries.models import MessageEvent, Status
from tests.factories import MessageFactory
from tests.support import HOSTILE, assert_shown_only_escaped

pytestmark = pytest.mark.django_db

SHOWN = ["sent", "delivered", "undelivered", "failed", "bounced", "opened", "clicked", "opted_out"]


def event(message, at, to_status="", **fields):
    return MessageEvent.objects.create(message=message, to_status=to_status, created_at=at, **fields)


@pytest.fixture
def timeline():
    """Messages on two channels over the last ten days, with the rollups counted."""
    now = timezone.now()
    for hours_ago in (1, 3, 30, 100, 230):
        at = now - timedelta(hours=hours_ago)
        for channel, outcome in (("sms", "delivered"), ("sms", "undelivered"), ("email", "delivered")):
            message = MessageFactory(channel=channel, status=outcome)
            event(message, at, Status.SENT)
            event(message, at + timedelta(seconds=5), outcome)
            if channel == "email":
                event(message, at + timedelta(minutes=1), kind="engagement", data={"event": "opened", "first": True})
                event(message, at + timedelta(minutes=2), kind="engagement", data={"event": "opened"})
    failed = MessageFactory(status=Status.FAILED)
    event(failed, now - timedelta(hours=2), Status.FAILED)
    analytics_rollup()
    return now


def independent(start, end, channel=None):
    """Counts of the shown metrics over the timeline, from the hour holding `start` to `end`."""
    events = MessageEvent.objects.filter(
        created_at__gte=start.astimezone(UTC).replace(minute=0, second=0, microsecond=0), created_at__lt=end
    )
    if channel:
        events = events.filter(message__channel=channel)
    counts = {metric: events.filter(to_status=metric).count() for metric in SHOWN}
    counts["opened"] = events.filter(kind="engagement", data__first=True).count()
    return counts


@pytest.fixture
def operator(client):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(user)
    return client


def totals_row(page: str) -> list[str]:
    row = re.search(r"<tfoot><tr><td>Total</td>(.*?)</tr></tfoot>", page).group(1)
    return re.findall(r'<td class="n">([^<]*)</td>', row)


def chart_data(page: str) -> dict:
    return json.loads(html.unescape(re.search(r'id="tidings-trends" data-chart="([^"]*)"', page).group(1)))


def test_the_trends_selector_equals_counts_over_the_timeline_per_channel_and_range(timeline):
    now = timeline
    for days, bucket in ((1, "hour"), (7, "day"), (30, "day")):
        for channel in (None, "sms", "email"):
            start = now - timedelta(days=days)
            figures = selectors.trends(start, now, bucket=bucket, channel=channel)
            assert {m: figures["totals"][m] for m in SHOWN} == independent(start, now, channel), (days, channel)
            assert sum(row["sent"] for row in figures["rows"]) == figures["totals"]["sent"]


def test_rates_are_per_message_and_none_where_there_is_nothing_to_divide(timeline):
    figures = selectors.trends(timeline - timedelta(days=30), timeline, bucket="day")
    assert figures["totals"]["delivery_rate"] == pytest.approx(10 / 15)  # 10 delivered, 5 undelivered
    assert figures["totals"]["open_rate"] == 1.0  # every delivered email opened, twice: counted once
    assert figures["totals"]["click_rate"] == 0.0
    assert selectors.trends(timeline - timedelta(days=30), timeline, channel="sms")["totals"]["open_rate"] is None
    with pytest.raises(ValueError, match="bucket must be one of hour, day"):
        selectors.trends(timeline, timeline, bucket="week")


def test_the_panel_shows_the_figures_of_the_chosen_range_in_charts_and_table(operator, timeline):
    page = operator.get("/admin/", {"trends_range": "7d", "trends_channel": "sms"}).content.decode()
    assert "Trends · Last 7 days, SMS, per day" in page
    expected = independent(timeline - timedelta(days=7), timeline, "sms")
    assert totals_row(page)[: len(SHOWN)] == [str(expected[m]) for m in SHOWN]
    assert totals_row(page)[len(SHOWN) :] == ["50.0 %", "–", "–"]
    data = chart_data(page)
    assert len(data["labels"]) == 8  # seven days back from the middle of a day: eight days
    sent = next(series for series in data["volumes"] if series["label"] == "Sent")
    assert sum(sent["data"]) == expected["sent"]
    assert [series["label"] for series in data["rates"]] == ["Delivery rate", "Open rate", "Click rate"]
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in page and 'src="/static/analytics/trends.js"' in page


def test_the_default_is_24_hours_per_hour_with_the_figures_as_of_note(operator, timeline):
    page = operator.get("/admin/").content.decode()
    assert "Trends · Last 24 hours, all channels, per hour" in page
    assert len(chart_data(page)["labels"]) == 25  # the hour 24 hours ago, to this one
    assert "up to date." in page
    expected = independent(timeline - timedelta(hours=24), timeline)
    assert totals_row(page)[: len(SHOWN)] == [str(expected[m]) for m in SHOWN]


def test_a_custom_range_is_shown_and_a_wrong_one_says_why_instead_of_failing(operator, timeline):
    day = timezone.localtime(timeline).date()
    page = operator.get(
        "/admin/", {"trends_range": "custom", "trends_from": str(day - timedelta(days=1)), "trends_to": str(day)}
    ).content.decode()
    assert "per hour" in page and len(chart_data(page)["labels"]) == 48  # two whole days
    page = operator.get(
        "/admin/", {"trends_range": "custom", "trends_from": str(day - timedelta(days=2)), "trends_to": str(day)}
    ).content.decode()
    assert "per day" in page and len(chart_data(page)["labels"]) == 3
    response = operator.get(
        "/admin/",
        {"trends_range": "custom", "trends_from": "2026-12-05", "trends_to": "2026-12-01", "trends_channel": "email"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "To must be after From. Showing the last 24 hours instead." in page
    assert "Trends · Last 24 hours, Email, per hour" in page
    assert 'name="trends_to" value="2026-12-01" placeholder="2026-12-07" size="16" class="invalid"' in page


def test_whatever_is_typed_into_the_panel_is_shown_only_escaped(operator, timeline):
    response = operator.get(
        "/admin/", {"trends_range": "custom", "trends_from": HOSTILE, "trends_to": HOSTILE, "trends_channel": HOSTILE}
    )
    assert response.status_code == 200
    assert_shown_only_escaped(response.content.decode(), times=2)


def test_the_note_says_what_to_do_when_the_rollups_never_ran_or_trail(operator):
    page = operator.get("/admin/").content.decode()
    assert "The rollups have never run" in page and "manage.py rollup_analytics" in page
    analytics_rollup()
    message = MessageFactory()
    event(message, timezone.now() - timedelta(minutes=10), Status.SENT)
    page = operator.get("/admin/").content.decode()
    assert "behind the timeline. Is a dispatcher running?" in page


def test_the_panel_is_shown_only_to_those_who_may_see_messages(client):
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)
    assert "tidings-trends" not in client.get("/admin/").content.decode()
