"""The Trends panel's range and channel, read from the query string: presets, custom ranges, and what is refused."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.trend_ranges import TrendsRangeError, trends_range_default, trends_range_from

NOW = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)


def chosen(**params):
    return trends_range_from({f"trends_{name}": value for name, value in params.items()}, now=NOW)


def refused(**params) -> TrendsRangeError:
    with pytest.raises(TrendsRangeError) as error:
        chosen(**params)
    return error.value


def test_the_default_is_the_last_24_hours_of_all_channels_per_hour():
    default = chosen()
    assert (default.start, default.end, default.channel, default.bucket) == (
        NOW - timedelta(hours=24),
        NOW,
        None,
        "hour",
    )


def test_presets_end_now_and_longer_ones_are_shown_per_day():
    assert chosen(range="7d").start == NOW - timedelta(days=7)
    assert chosen(range="7d").bucket == "day"
    assert chosen(range="30d", channel="email").channel == "email"


def test_a_custom_range_of_dates_covers_both_whole_days_in_the_sites_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    with timezone.override("Europe/Paris"):
        custom = chosen(range="custom", **{"from": "2026-12-01", "to": "2026-12-02"})
    assert custom.start == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert custom.end == datetime(2026, 12, 2, 23, tzinfo=UTC)
    assert custom.bucket == "hour"  # 48 hours exactly


def test_a_custom_range_takes_dates_with_times():
    custom = chosen(range="custom", **{"from": "2026-12-01T09:30", "to": "2026-12-01T18:00"})
    assert (custom.start, custom.end) == (
        datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        datetime(2026, 12, 1, 18, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"range": "1y"}, "trends_range", "Unknown range"),
        ({"channel": "fax"}, "trends_channel", "Unknown channel"),
        ({"range": "custom", "to": "2026-12-01"}, "trends_from", "From is required"),
        ({"range": "custom", "from": "2026-12-01"}, "trends_to", "To is required"),
        ({"range": "custom", "from": "2026-02-31", "to": "2026-03-02"}, "trends_from", "From is not a date"),
        ({"range": "custom", "from": "yesterday", "to": "2026-03-02"}, "trends_from", "From is not a date"),
        ({"range": "custom", "from": "2026-01-01", "to": "9999-12-31"}, "trends_to", "To is not a date"),
        ({"range": "custom", "from": "9999-12-01", "to": "9999-12-31T23:30"}, "trends_from", "From is not a date"),
        ({"range": "custom", "from": "0001-01-01", "to": "0001-01-02"}, "trends_from", "From is not a date"),
        ({"range": "custom", "from": "2026-12-05", "to": "2026-12-01"}, "trends_to", "To must be after From"),
        ({"range": "custom", "from": "2024-01-01", "to": "2026-12-01"}, "trends_to", "at most 366 days"),
    ],
)
def test_a_wrong_choice_is_refused_naming_its_field(params, field, words):
    error = refused(**params)
    assert error.field == field
    assert words in error.message


def test_after_a_wrong_range_the_default_keeps_a_valid_channel():
    assert trends_range_default(NOW, {"trends_channel": "sms"}).channel == "sms"
    assert trends_range_default(NOW, {"trends_channel": "<b>"}).channel is None
