"""The providers' actual prices (issue #24, "Cost"): the price job asks the fake Twilio, through the real twilio
client, what each sent SMS and WhatsApp message cost, stores it, keeps to its bound and gives up in the end."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from deliveries.backends import get_backend
from deliveries.backends.base import OutgoingMessage
from deliveries.models import PRICE_CHECKS_MAX, Message, Status
from deliveries.services import actual_prices
from deliveries.services.actual_prices import message_prices_fetch, price_tick
from tests.factories import MessageFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db

SENT_AGO = timedelta(minutes=15)  # past ACTUAL_PRICE_FETCH_AFTER_MINUTES (10)


def sent(channel: str = "sms", to: str = "+14155550100", body: str = "Your code is 1234", ago=SENT_AGO) -> Message:
    """A message the fake Twilio accepted (through the real backend), stored as sent `ago`."""
    message = MessageFactory(channel=channel, recipient=to, body=body, status=Status.SENT)
    result = get_backend(channel).send(OutgoingMessage(id=message.pk, channel=channel, recipient=to, body=body))
    Message.objects.filter(pk=message.pk).update(
        provider="twilio", provider_message_id=result.provider_message_id, sent_at=timezone.now() - ago
    )
    return message


def fetches(fake_twilio) -> dict[str, int]:
    """How many times each message's resource was fetched, by SID."""
    return {m["sid"]: m.get("fetches", 0) for m in fake_twilio.received}


def costs() -> dict[int, tuple[Decimal | None, str]]:
    return {
        pk: (cost, currency)
        for pk, cost, currency in Message.objects.values_list("pk", "actual_cost", "actual_cost_currency")
    }


def test_the_job_stores_twilios_price_per_segment_and_per_whatsapp_message_as_a_positive_amount(fake_twilio):
    fake_twilio.price_after_fetches = 0
    us = sent(to="+14155550100", body="a" * 160)  # 1 GSM-7 segment at 0.0079
    gb = sent(to="+447400123456", body="ж" * 71)  # 2 UCS-2 segments at 0.0400
    whatsapp = sent(channel="whatsapp", to="+447400123456", body="x" * 500)  # per message
    report = message_prices_fetch(limit=10)
    assert (report.priced, report.not_yet, report.gave_up, report.stopped) == (3, 0, 0, "")
    assert costs() == {
        us.pk: (Decimal("0.0079"), "USD"),
        gb.pk: (Decimal("0.08"), "USD"),
        whatsapp.pk: (Decimal("0.04"), "USD"),
    }
    # Priced messages are not asked again.
    assert message_prices_fetch(limit=10).asked == 0
    assert set(fetches(fake_twilio).values()) == {1}


def test_a_price_twilio_has_not_filled_in_yet_is_asked_again_after_twice_the_wait(fake_twilio):
    fake_twilio.price_after_fetches = 1  # the first fetch answers price: null, as right after delivery
    message = sent(ago=timedelta(minutes=15))
    first = message_prices_fetch(limit=10)
    assert (first.priced, first.not_yet) == (0, 1)
    message.refresh_from_db()
    assert (message.actual_cost, message.price_checks) == (None, 1)
    # Asked once: the next ask waits until 20 minutes after the send.
    assert message_prices_fetch(limit=10).asked == 0
    later = message_prices_fetch(limit=10, now=timezone.now() + timedelta(minutes=6))
    assert later.priced == 1
    message.refresh_from_db()
    assert (message.actual_cost, message.actual_cost_currency, message.price_checks) == (Decimal("0.0079"), "USD", 2)


def test_each_pass_asks_at_most_its_bound_oldest_sent_first(fake_twilio):
    fake_twilio.price_after_fetches = 0
    messages = [sent(ago=timedelta(minutes=60 - i)) for i in range(5)]
    requests_before = fake_twilio.request_count
    assert message_prices_fetch(limit=2).priced == 2
    assert fake_twilio.request_count - requests_before == 2
    priced = [m.pk for m in messages if costs()[m.pk][0] is not None]
    assert priced == [messages[0].pk, messages[1].pk]
    assert message_prices_fetch(limit=2).priced == 2
    assert message_prices_fetch(limit=2).priced == 1
    assert all(cost is not None for cost, _ in costs().values())


def test_a_message_whose_price_never_comes_is_asked_price_checks_max_times_then_given_up(fake_twilio):
    fake_twilio.price_after_fetches = -1
    message = sent()
    reports = [message_prices_fetch(limit=10, now=timezone.now() + timedelta(hours=hours)) for hours in range(12)]
    assert sum(report.not_yet for report in reports) == PRICE_CHECKS_MAX - 1
    assert sum(report.gave_up for report in reports) == 1
    assert fetches(fake_twilio)[Message.objects.get(pk=message.pk).provider_message_id] == PRICE_CHECKS_MAX
    message.refresh_from_db()
    assert (message.actual_cost, message.price_checks) == (None, PRICE_CHECKS_MAX)


def test_messages_sent_moments_ago_or_too_long_ago_are_not_asked(fake_twilio, settings):
    fake_twilio.price_after_fetches = 0
    settings.ACTUAL_PRICE_FETCH_MAX_DAYS = 3
    sent(ago=timedelta(minutes=2))
    sent(ago=timedelta(days=4))
    MessageFactory(status=Status.QUEUED)  # never sent
    MessageFactory(channel="email", recipient="ada@example.com", status=Status.SENT, sent_at=timezone.now() - SENT_AGO)
    assert message_prices_fetch(limit=10).asked == 0
    assert set(fetches(fake_twilio).values()) == {0}


def test_throttling_ends_the_pass_without_counting_an_ask(fake_twilio):
    fake_twilio.price_after_fetches = 0
    message = sent()
    fake_twilio.fail_429_rate = 1.0
    report = message_prices_fetch(limit=10)
    assert (report.asked, report.stopped != "") == (0, True)
    message.refresh_from_db()
    assert message.price_checks == 0
    fake_twilio.fail_429_rate = 0.0
    assert message_prices_fetch(limit=10).priced == 1


def test_a_message_twilio_no_longer_knows_counts_as_an_ask_without_a_price(fake_twilio):
    message = sent()
    Message.objects.filter(pk=message.pk).update(provider_message_id="SM" + "0" * 32)
    report = message_prices_fetch(limit=10)
    assert (report.not_yet, report.priced) == (1, 0)


def test_backends_that_report_no_price_are_not_asked(settings):
    settings.SMS_BACKEND = "locmem"
    MessageFactory(
        status=Status.SENT, provider="locmem", provider_message_id="locmem-1", sent_at=timezone.now() - SENT_AGO
    )
    assert message_prices_fetch(limit=10).asked == 0


def test_one_dispatcher_a_minute_takes_the_turn_and_zero_turns_the_job_off(fake_twilio, settings):
    fake_twilio.price_after_fetches = 0
    settings.ACTUAL_PRICE_FETCH_PER_MINUTE = 0
    first = sent()
    price_tick()
    assert costs()[first.pk][0] is None
    settings.ACTUAL_PRICE_FETCH_PER_MINUTE = 60
    price_tick()  # this dispatcher takes the minute
    assert costs()[first.pk][0] == Decimal("0.0079")
    second = sent()
    price_tick()  # the same minute: another dispatcher's tick (or this one's) leaves it
    assert costs()[second.pk][0] is None
    cache.delete(actual_prices.TURN_KEY)  # the minute is over
    price_tick()
    assert costs()[second.pk][0] == Decimal("0.0079")


def test_the_job_is_one_of_the_dispatchers_periodic_tasks_unless_turned_off():
    from messaging_project.settings import base

    listed = [path for path, _every in base.DISPATCHER_PERIODIC_TASKS]
    assert ("deliveries.services.actual_prices.price_tick" in listed) == (base.ACTUAL_PRICE_FETCH_PER_MINUTE > 0)


@pytest.mark.django_db(transaction=True)
def test_a_message_sent_by_the_worker_gets_its_price_shown_by_the_api_and_the_admin(api, fake_twilio, admin_client):
    fake_twilio.price_after_fetches = 0
    created = api.post(
        "/api/v1/messages/", {"channel": "sms", "to": "+447400123456", "body": "Your code is 1234"}, format="json"
    )
    assert created.json()["actual_cost"] is None and created.json()["actual_cost_currency"] == ""
    run_burst_worker()
    message_prices_fetch(limit=10, now=timezone.now() + SENT_AGO)
    shown = api.get(f"/api/v1/messages/{created.json()['id']}/").json()
    assert (shown["actual_cost"], shown["actual_cost_currency"]) == ("0.040000", "USD")
    page = admin_client.get(f"/admin/deliveries/message/{created.json()['id']}/change/").content.decode()
    assert "actual cost" in page.lower() and "0.040000 USD" in page
