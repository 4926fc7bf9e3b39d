"""The rollup job on its own: what each event counts as, exactly once, however late its transaction commits."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from analytics import selectors
from analytics.models import HourlyRollup, MinuteRollup, RollupGap
from analytics.services.rollup import analytics_rollup, event_metrics, rollup_batch
from deliveries.models import InboundMessage, Message, MessageEvent, Status
from deliveries.services.feedback import ProviderReport, report_apply
from deliveries.state import transition
from tests.analytics.counts import expected_by_hour, hourly_totals, minute_totals, rolled_up_by_hour
from tests.campaigns.campaign_support import new_campaign
from tests.factories import ContactListFactory, MessageFactory
from tests.support import at_once, process_env, run_manage, start_manage, stop, wait_for


def sent_sms(**fields) -> Message:
    message = MessageFactory(status=Status.QUEUED, **fields)
    transition([message.pk], to_status=Status.SENDING)
    transition(
        [message.pk], to_status=Status.SENT, fields={"provider": "twilio", "provider_message_id": f"SM{message.pk}"}
    )
    return message


def report(message: Message, event: str, **fields) -> None:
    report_apply(
        ProviderReport(
            provider=fields.pop("provider", "twilio"),
            event=event,
            dedupe_key=f"{event}:{message.pk}:{fields.pop('n', 0)}",
            message_id=message.pk,
            **fields,
        )
    )


def test_an_event_counts_as_the_status_it_reached_and_what_the_provider_reported():
    assert event_metrics("status", "delivered", {}) == ["delivered"]
    assert event_metrics("provider", "", {"event": "bounced"}) == ["bounced"]
    assert event_metrics("provider", "", {"event": "soft_bounced", "event_type": "bounced"}) == []
    assert event_metrics("provider", "", {"event": "unsubscribed"}) == ["opted_out"]
    assert event_metrics("provider", "", {"event": "complained"}) == ["complained"]
    # Opens and clicks count messages: only the first of each message.
    assert event_metrics("engagement", "", {"event": "opened", "first": True}) == ["opened"]
    assert event_metrics("engagement", "", {"event": "opened"}) == []
    assert event_metrics("engagement", "", {"event": "clicked", "first": True}) == ["clicked"]
    # Rows from before feedback recorded its own word: the provider's.
    assert event_metrics("provider", "", {"event_type": "complained"}) == ["complained"]
    assert event_metrics("note", "", {"event": "bounced"}) == []
    assert event_metrics("status", "nonsense", {}) == []


@pytest.mark.django_db
def test_statuses_reports_opens_and_stop_replies_are_counted_by_hour_channel_and_campaign():
    campaign = new_campaign(ContactListFactory())
    delivered = sent_sms(campaign=campaign)
    report(delivered, "delivered")
    undelivered = sent_sms()
    report(undelivered, "undelivered", error_code="30006")
    email = sent_sms(channel="email", recipient="ada@example.com", campaign=campaign)
    for n in range(3):
        report(email, "opened", provider="postmark", n=n)
    report(email, "clicked", provider="postmark")
    report(email, "complained", provider="postmark")
    bounced = sent_sms(channel="email", recipient="bob@example.com")
    report(bounced, "bounced", provider="postmark")
    InboundMessage.objects.create(
        channel="sms", sender="+14155550100", provider="twilio", provider_message_id="SM-in", keyword="stop"
    )

    analytics_rollup()

    assert rolled_up_by_hour() == expected_by_hour()
    funnel = selectors.campaign_funnel(campaign.pk)
    assert (funnel["sent"], funnel["delivered"], funnel["opened"], funnel["clicked"], funnel["complained"]) == (
        2,
        2,
        1,
        1,
        1,
    )
    assert funnel["undelivered"] == 0 and funnel["bounced"] == 0
    figures = selectors.totals()
    assert figures[("sms", "opted_out")] == 1
    assert figures[("email", "bounced")] == 1 and figures[("email", "undelivered")] == 1
    assert figures[("messenger", "sent")] == 0
    assert minute_totals() == hourly_totals()  # all of it within the minute rollup's 48 hours


@pytest.mark.django_db
def test_a_second_run_counts_nothing_again_and_new_events_are_added():
    message = sent_sms()
    analytics_rollup()
    before = rolled_up_by_hour()
    assert analytics_rollup() == 0
    assert rolled_up_by_hour() == before
    report(message, "delivered")
    assert analytics_rollup() == 2  # the provider's event and the status change
    assert rolled_up_by_hour() == expected_by_hour()


@pytest.mark.django_db
def test_an_event_that_appears_below_the_watermark_is_counted_once():
    message = sent_sms()
    late = MessageEvent.objects.create(message=message, to_status="delivered")
    MessageEvent.objects.create(message=message, kind="note", detail="a later event, committed first")
    late_values = {"pk": late.pk, "created_at": late.created_at}
    late.delete()  # as if its transaction had not committed yet when the job read past it

    analytics_rollup()
    assert list(RollupGap.objects.values_list("row_id", flat=True)) == [late_values["pk"]]
    assert selectors.totals()[("sms", "delivered")] == 0

    MessageEvent.objects.create(message=message, to_status="delivered", **late_values)  # it commits
    analytics_rollup()
    analytics_rollup()
    assert selectors.totals()[("sms", "delivered")] == 1
    assert not RollupGap.objects.exists()
    assert rolled_up_by_hour() == expected_by_hour()


@pytest.mark.django_db
def test_a_gap_is_forgotten_after_its_max_age(settings):
    message = sent_sms()
    gone = MessageEvent.objects.create(message=message, to_status="delivered")
    MessageEvent.objects.create(message=message, kind="note")
    gone.delete()
    analytics_rollup()
    assert RollupGap.objects.count() == 1
    rollup_batch(now=timezone.now() + timedelta(seconds=settings.ANALYTICS_GAP_MAX_AGE + 1))
    assert not RollupGap.objects.exists()


@pytest.mark.django_db
def test_the_first_run_over_an_old_database_does_not_take_deleted_ids_for_gaps():
    old = sent_sms()
    old.delete()
    sent_sms()
    analytics_rollup()
    assert not RollupGap.objects.exists()
    assert selectors.totals()[("sms", "sent")] == 1


@pytest.mark.django_db(transaction=True)
def test_two_jobs_at_once_never_count_an_event_twice():
    for _ in range(30):
        report(sent_sms(), "delivered")
    at_once(lambda: analytics_rollup(limit=7), 4)
    assert rolled_up_by_hour() == expected_by_hour()
    assert selectors.totals()[("sms", "delivered")] == 30


@pytest.mark.django_db(transaction=True)
def test_an_event_whose_transaction_commits_after_a_higher_id_was_counted_is_counted_once():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: no id commits out of order")
    message = sent_sms()
    inserted, commit = threading.Event(), threading.Event()

    def slow_transaction():
        try:
            with transaction.atomic():
                MessageEvent.objects.create(message_id=message.pk, to_status="delivered")
                inserted.set()
                commit.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    assert inserted.wait(timeout=30)
    MessageEvent.objects.create(message=message, kind="note", detail="a higher id, committed first")
    analytics_rollup()
    assert RollupGap.objects.count() == 1
    commit.set()
    thread.join()
    analytics_rollup()
    analytics_rollup()
    assert selectors.totals()[("sms", "delivered")] == 1
    assert not RollupGap.objects.exists()


@pytest.mark.django_db
def test_the_minute_rollup_keeps_only_its_retention_and_old_events_skip_it(settings):
    message = sent_sms()
    MessageEvent.objects.filter(message=message).update(created_at=timezone.now() - timedelta(hours=72))
    MinuteRollup.objects.create(minute=timezone.now() - timedelta(hours=49), channel="sms", metric="sent", count=5)
    analytics_rollup()
    assert not MinuteRollup.objects.exists()
    assert selectors.totals()[("sms", "sent")] == 1


@pytest.mark.django_db
def test_schedule_lag_percentiles_come_from_the_minute_histogram():
    now = timezone.now()
    for lag in [1.5] * 60 + [45] * 39 + [4000]:
        message = MessageFactory(status=Status.QUEUED, send_at=now - timedelta(seconds=lag))
        transition([message.pk], to_status=Status.SENDING)
        transition([message.pk], to_status=Status.SENT)
    analytics_rollup()
    lag = selectors.schedule_lag(now - timedelta(minutes=5))
    assert lag["count"] == 100
    assert 1 < lag["p50"] <= 2  # within the bucket (1, 2]
    assert 30 < lag["p99"] <= 60
    assert selectors.schedule_lag(now + timedelta(minutes=5)) == {"p50": None, "p99": None, "count": 0}


@pytest.mark.django_db
def test_outcomes_and_per_minute_read_the_minute_rollup_with_every_metric():
    minute = timezone.now().replace(second=0, microsecond=0)
    MinuteRollup.objects.create(minute=minute, channel="sms", metric="sent", count=3)
    MinuteRollup.objects.create(minute=minute - timedelta(minutes=2), channel="email", metric="sent", count=2)
    MinuteRollup.objects.create(minute=minute - timedelta(minutes=90), channel="sms", metric="sent", count=7)
    MinuteRollup.objects.create(minute=minute, channel="sms", metric="lag_le_00", count=3)

    figures = selectors.outcomes_since(minute - timedelta(minutes=10))
    assert figures["sent"] == 5 and figures["delivered"] == 0 and "lag_le_00" not in figures
    assert selectors.outcomes_since(minute - timedelta(minutes=10), channel="sms")["sent"] == 3
    series = selectors.per_minute(5)
    assert [row["minute"] for row in series] == [minute - timedelta(minutes=4 - i) for i in range(5)]
    assert [row["sent"] for row in series] == [0, 0, 2, 0, 3]
    assert [row["sent"] for row in selectors.per_minute(5, channel="email")] == [0, 0, 2, 0, 0]


@pytest.mark.django_db
def test_the_rollup_lag_is_the_age_of_the_oldest_event_not_counted_yet():
    assert selectors.rollup_lag_seconds() is None  # never ran
    analytics_rollup()
    assert selectors.rollup_lag_seconds() == 0.0
    message = sent_sms()
    MessageEvent.objects.filter(message=message).update(created_at=timezone.now() - timedelta(minutes=10))
    assert 590 < selectors.rollup_lag_seconds() < 900
    analytics_rollup()
    assert selectors.rollup_lag_seconds() == 0.0


@pytest.mark.django_db
def test_the_command_counts_until_caught_up_and_says_how_many():
    for _ in range(3):
        sent_sms()
    out = StringIO()
    call_command("rollup_analytics", stdout=out)
    assert out.getvalue() == "Rollups up to date: 6 new row(s) counted.\n"
    assert HourlyRollup.objects.get(metric="sent").count == 3


def test_every_dispatcher_runs_the_rollup_every_few_seconds(settings):
    assert (
        "analytics.services.rollup.rollup_tick",
        settings.ANALYTICS_ROLLUP_INTERVAL,
    ) in settings.DISPATCHER_PERIODIC_TASKS
    assert settings.ANALYTICS_ROLLUP_INTERVAL == 5.0


@pytest.mark.django_db(transaction=True)
def test_the_command_can_run_as_its_own_process_until_stopped():
    process = start_manage("rollup_analytics", "--every", "0.2", env=process_env())
    try:
        sent_sms()
        wait_for(lambda: selectors.totals()[("sms", "sent")] == 1, timeout=20, message="the rollup process to count")
        report(Message.objects.get(), "delivered")
        wait_for(lambda: selectors.totals()[("sms", "delivered")] == 1, timeout=20, message="the next pass")
    finally:
        output = stop(process)
    assert output.splitlines() == ["Counting into the rollups every 0.2s.", "Rollups stopped."]


def test_a_wrong_interval_is_refused_in_one_line():
    with pytest.raises(CommandError, match=r"^--every must be a number of seconds above 0, as --every 2\.$"):
        call_command("rollup_analytics", "--every", "0")


def test_an_interval_of_0_takes_the_rollups_off_the_dispatchers():
    show = "from django.conf import settings; print([path for path, _ in settings.DISPATCHER_PERIODIC_TASKS])"
    result = run_manage("shell", "-c", show, ANALYTICS_ROLLUP_INTERVAL="0")
    assert result.returncode == 0, result.stderr
    assert "rollup_tick" not in result.stdout and "reconcile" in result.stdout
