"""analytics.selectors.campaign_series: one campaign's hours, every hour present, from its rollup rows only."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics.models import HourlyRollup
from analytics.selectors import CAMPAIGN_SERIES_MAX_HOURS, campaign_series

pytestmark = pytest.mark.django_db

NINE = datetime(2027, 3, 1, 9, tzinfo=UTC)


def rollup(hour, metric, count, *, campaign_id=7, channel="sms"):
    HourlyRollup.objects.create(hour=hour, metric=metric, count=count, campaign_id=campaign_id, channel=channel)


def test_the_series_has_every_hour_from_the_first_to_the_last_with_the_channels_added_up():
    rollup(NINE, "sent", 5)
    rollup(NINE, "sent", 2, channel="email")
    rollup(NINE + timedelta(hours=2), "delivered", 4)
    rollup(NINE + timedelta(hours=1), "sent", 99, campaign_id=8)  # another campaign
    rollup(NINE + timedelta(hours=1), "queued", 99)  # a metric not asked for
    series = campaign_series(7, ("sent", "delivered"))
    assert series == [
        {"hour": NINE, "sent": 7, "delivered": 0},
        {"hour": NINE + timedelta(hours=1), "sent": 0, "delivered": 0},
        {"hour": NINE + timedelta(hours=2), "sent": 0, "delivered": 4},
    ]
    assert campaign_series(9, ("sent",)) == []


def test_the_series_runs_on_to_until_and_keeps_the_last_two_weeks():
    rollup(NINE, "sent", 1)
    assert len(campaign_series(7, ("sent",), until=NINE + timedelta(hours=3, minutes=30))) == 4
    rollup(NINE + timedelta(hours=CAMPAIGN_SERIES_MAX_HOURS + 5), "sent", 2)
    series = campaign_series(7, ("sent",))
    assert len(series) == CAMPAIGN_SERIES_MAX_HOURS
    assert series[-1]["sent"] == 2 and sum(point["sent"] for point in series) == 2
