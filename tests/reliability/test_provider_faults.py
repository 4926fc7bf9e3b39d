"""A misbehaving provider: random 500s and 429s, a 20-second outage, invalid numbers.

Real worker and dispatcher processes against the real Redis, the test database and the fake Twilio; every
scenario counts what the fake received.
"""

import time

import pytest
from django.db.models import Max

from deliveries.circuit_breakers import ProviderBreaker
from deliveries.models import Message, MessageEvent, Status
from tests.reliability.support import queue_sms, statuses, wait_until_settled
from tests.support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.db_neutral]


def test_with_30_percent_500s_and_10_percent_429s_every_message_is_delivered_once(pipeline, fake_twilio):
    count = 500
    fake_twilio.configure(fail_500_rate=0.3, fail_429_rate=0.1, seed=7)
    ids = queue_sms(count)
    # Enough attempts that 40% failures cannot exhaust them (0.4**15 per message); a breaker that only trips on
    # a long run of failures, as an outage would cause.
    overrides = {"SMS_MAX_ATTEMPTS": "15", "BREAKER_FAIL_MAX": "25"}
    pipeline.start_worker(**overrides)
    pipeline.start_worker(**overrides)
    pipeline.start_dispatcher(**overrides)

    settled = wait_until_settled(ids, timeout=90)

    assert settled == {Status.SENT: count}
    per_recipient = fake_twilio.count_by_to()
    assert len(per_recipient) == count and set(per_recipient.values()) == {1}
    failed_calls = fake_twilio.request_count - count
    assert failed_calls > count * 0.4  # about 2/3 of a call failed per message: the faults really happened
    # Every attempt is on the timeline: each failed one with its code and what happens next, then the success.
    retries = MessageEvent.objects.filter(message_id__in=ids, to_status=Status.SCHEDULED, from_status="sending")
    assert retries.count() == failed_calls
    assert set(retries.values_list("code", flat=True)) == {"20500", "20429"}
    assert all(e.data["next"] == "retry" and "Retrying at" in e.detail for e in retries[:50])
    attempts = dict(Message.objects.filter(pk__in=ids).values_list("pk", "attempts"))
    assert sum(attempts.values()) == fake_twilio.request_count
    sent_events = MessageEvent.objects.filter(message_id__in=ids, to_status=Status.SENT)
    assert {e.message_id: e.data["attempt"] for e in sent_events} == attempts
    pipeline.assert_no_tracebacks()


def test_a_provider_down_for_20_seconds_opens_the_breaker_and_messages_wait_then_all_go_out(pipeline, fake_twilio):
    count = 200
    fake_twilio.down = True
    overrides = {"BREAKER_FAIL_MAX": "5", "BREAKER_RESET_TIMEOUT": "3", "SEND_RETRY_BACKOFF": "1"}
    pipeline.start_worker(**overrides)
    pipeline.start_worker(**overrides)
    pipeline.start_dispatcher(**overrides)
    down_since = time.monotonic()
    ids = queue_sms(count)

    breaker = ProviderBreaker("twilio")
    wait_for(lambda: breaker.status().state == "open", timeout=10, message="the breaker to open")
    while time.monotonic() - down_since < 20:
        assert statuses(ids)[Status.FAILED] == 0
        time.sleep(0.5)
    calls_while_down = fake_twilio.request_count
    fake_twilio.down = False

    settled = wait_until_settled(ids, timeout=60)
    assert settled == {Status.SENT: count}
    per_recipient = fake_twilio.count_by_to()
    assert len(per_recipient) == count and set(per_recipient.values()) == {1}
    # The messages waited instead of burning their attempts: a few calls tripped the breaker, then one probe
    # every few seconds.
    print(f"\noutage: {calls_while_down} calls in 20 s for {count} messages")
    assert calls_while_down < 40
    assert Message.objects.filter(pk__in=ids).aggregate(most=Max("attempts"))["most"] <= 3
    assert MessageEvent.objects.filter(message_id__in=ids, code="circuit_open").exists()
    assert breaker.status().state == "closed"
    pipeline.assert_no_tracebacks()


def test_invalid_numbers_fail_at_once_with_their_code_and_are_not_retried(pipeline, fake_twilio):
    invalid = {"+15005550001": "21211", "+15005550009": "21614", "+15005550004": "21610"}
    valid = [f"+1415{6000000 + i:07d}" for i in range(97)]
    recipients = valid[:40] + list(invalid) + valid[40:]
    ids = queue_sms(len(recipients), recipients=recipients)
    pipeline.start_worker()
    pipeline.start_dispatcher()

    settled = wait_until_settled(ids, timeout=60)

    assert settled == {Status.SENT: 97, Status.FAILED: 3}
    for message in Message.objects.filter(pk__in=ids, status=Status.FAILED):
        assert message.last_error_code == invalid[message.recipient]
        assert message.attempts == 1
    failed = Message.objects.get(pk__in=ids, recipient="+15005550001")
    assert failed.last_error_message == "The 'To' number is not a valid phone number."
    assert failed.events.last().data == {"attempt": 1, "max_attempts": 5, "transient": False, "next": "none"}
    assert fake_twilio.request_count == 100  # one call each, no retries
    pipeline.assert_no_tracebacks()
