"""Retries, deadlines, leases, the circuit breaker and rate limits, one at a time, through a real RQ worker."""

import time
from collections import Counter
from datetime import timedelta

import django_rq
import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rq.registry import FinishedJobRegistry

from deliveries.backends.base import SendResult
from deliveries.circuit_breakers import QUIET_STATUS_MAX_AGE, ProviderBreaker
from deliveries.exceptions import TransientDeliveryError
from deliveries.models import Message, Status
from deliveries.sending.claims import claim_messages
from deliveries.sending.job import send_messages
from deliveries.sending.outcomes import max_attempts_for, record_accepted_and_claim, retry_delay
from deliveries.services.bulk import messages_create_many
from deliveries.services.dispatch import dispatch_due_messages
from deliveries.services.messages import (
    message_create,
    message_request_validate,
    message_review_mark_failed,
    message_review_mark_sent,
    message_review_resend,
)
from deliveries.services.recovery import fail_expired_messages, recover_expired_leases
from deliveries.state import transition
from tests.factories import MessageFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def create(**fields):
    request, content = message_request_validate(**{"channel": "sms", "to": "+14155550100", "body": "hi", **fields})
    return message_create(request=request, content=content)


# --- Retries ---------------------------------------------------------------------------------------------------


def test_retry_delay_doubles_up_to_its_cap_with_jitter_below_each_step(settings):
    settings.SEND_RETRY_BACKOFF, settings.SEND_RETRY_BACKOFF_MAX, settings.SEND_RETRY_JITTER = 5, 60, 0.5
    for attempts, ceiling in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (9, 60)]:
        delays = {retry_delay(attempts).total_seconds() for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered
    settings.SEND_RETRY_JITTER = 0
    assert retry_delay(3) == timedelta(seconds=20)


def test_attempts_are_configured_per_channel_falling_back_to_the_default(settings):
    settings.SEND_MAX_ATTEMPTS, settings.SMS_MAX_ATTEMPTS, settings.EMAIL_MAX_ATTEMPTS = 5, 2, None
    assert max_attempts_for("sms") == 2
    assert max_attempts_for("email") == 5


def test_a_transient_error_is_retried_until_the_channels_attempts_run_out(fake_twilio, settings):
    settings.SMS_MAX_ATTEMPTS = 2
    fake_twilio.down = True
    message = create()
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.SCHEDULED
    retry = message.events.last()
    assert retry.code == "20503"
    assert retry.detail.startswith("Attempt 1 of 2 failed: Twilio is temporarily unavailable. Retrying at ")
    assert retry.data["next"] == "retry"

    assert dispatch_due_messages() == 1
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.attempts == 2
    assert message.last_error_message == "Gave up after 2 attempts: Twilio is temporarily unavailable."
    assert fake_twilio.request_count == 2
    assert Message.objects.count() == 1  # retries never make a second row


def test_a_delivered_message_is_never_sent_again_by_a_stray_job(fake_twilio):
    message = create()
    run_burst_worker()
    Message.objects.filter(pk=message.pk).update(status=Status.DELIVERED)
    assert send_messages([message.pk]) == {}
    assert fake_twilio.request_count == 1


# --- Deadlines -------------------------------------------------------------------------------------------------


def test_a_message_past_its_deadline_fails_with_that_reason_instead_of_going_out(fake_twilio):
    message = create(valid_for=600)
    Message.objects.filter(pk=message.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.last_error_code == "expired"
    assert message.last_error_message.startswith("Too late: its deadline passed")
    assert fake_twilio.request_count == 0


def test_a_retry_that_would_land_past_the_deadline_fails_now(fake_twilio, settings):
    settings.SEND_RETRY_BACKOFF, settings.SEND_RETRY_JITTER = 60, 0
    fake_twilio.down = True
    message = create(valid_for=30)
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.last_error_message == "Too late for another try: Twilio is temporarily unavailable."
    assert message.events.last().data["next"] == "expired"


def test_scheduled_messages_past_their_deadline_are_failed_by_the_reconciler():
    message = create(send_at=timezone.now() + timedelta(hours=1), valid_for=60)
    assert message.expires_at == message.send_at + timedelta(seconds=60)
    Message.objects.filter(pk=message.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert fail_expired_messages() == 1
    assert Message.objects.get(pk=message.pk).status == Status.FAILED


def test_a_channel_can_have_a_default_deadline(settings):
    settings.SMS_VALID_FOR = 600
    message = create()
    assert timedelta(seconds=599) < message.expires_at - message.created_at <= timedelta(seconds=600)


@pytest.mark.parametrize(
    "body, field, error",
    [
        ({"valid_for": 60, "expires_at": "2099-01-01T00:00:00Z"}, "valid_for", "not both"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "must come after the send time"),
        ({"valid_for": 0}, "valid_for", "greater than or equal to 1"),
    ],
)
def test_the_api_checks_deadlines(api, body, field, error):
    response = api.post("/api/v1/messages/", {"channel": "sms", "to": "+14155550100", "body": "x", **body})
    assert response.status_code == 400
    assert error in str(response.json()[field])


def test_the_api_takes_valid_for_and_shows_the_deadline(api):
    response = api.post(
        "/api/v1/messages/", {"channel": "sms", "to": "+14155550100", "body": "Code 1234", "valid_for": 600}
    )
    assert response.status_code == 201
    message = Message.objects.get()
    assert response.json()["expires_at"] is not None
    assert message.expires_at - message.created_at <= timedelta(seconds=600)


# --- Leases and review -----------------------------------------------------------------------------------------


def expire_lease(message):
    Message.objects.filter(pk=message.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_message_whose_worker_died_mid_call_goes_to_review_with_the_reason():
    message = MessageFactory(status=Status.QUEUED)
    [claimed] = claim_messages([message.pk])
    expire_lease(claimed)
    assert recover_expired_leases() == {"review": 1, "resent": 0}
    claimed.refresh_from_db()
    assert claimed.status == Status.REVIEW
    assert claimed.last_error_code == "interrupted"
    assert "may or may not have this message" in claimed.last_error_message


def test_channels_where_a_duplicate_is_harmless_are_sent_again_instead(settings):
    settings.RESEND_AMBIGUOUS_CHANNELS = ["sms"]
    message = MessageFactory(status=Status.QUEUED)
    [claimed] = claim_messages([message.pk])
    expire_lease(claimed)
    assert recover_expired_leases() == {"review": 0, "resent": 1}
    claimed.refresh_from_db()
    assert claimed.status == Status.SCHEDULED
    assert dispatch_due_messages() == 1


def test_a_slow_calls_late_answer_settles_a_message_in_review():
    message = MessageFactory(status=Status.QUEUED)
    [claimed] = claim_messages([message.pk])
    expire_lease(claimed)
    recover_expired_leases()
    result = SendResult(message_id=claimed.pk, provider="twilio", provider_message_id="SM1")
    assert record_accepted_and_claim([(claimed, result)], []).sent_ids == [claimed.pk]
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert Message.objects.get(pk=message.pk).provider_message_id == "SM1"


def test_a_person_settles_messages_in_review(sms_outbox):
    resend, sent, failed = (MessageFactory(status=Status.REVIEW) for _ in range(3))
    assert message_review_resend(message=resend, by="ada")
    assert message_review_mark_sent(message=sent, by="ada")
    assert message_review_mark_failed(message=failed, by="ada")
    assert not message_review_mark_failed(message=failed, by="ada")
    run_burst_worker()
    assert [Message.objects.get(pk=m.pk).status for m in (resend, sent, failed)] == ["sent", "sent", "failed"]
    assert len(sms_outbox) == 1


def test_the_admin_lists_messages_in_review_and_its_actions_settle_them(client):
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_message", "review_message"]))
    client.force_login(user)
    message = MessageFactory(status=Status.REVIEW)
    listing = client.get("/admin/deliveries/message/?status__exact=review")
    assert "Needs review" in listing.content.decode()
    assert "Providers" in listing.content.decode()  # the breaker panel
    response = client.post(
        "/admin/deliveries/message/", {"action": "mark_reviewed_failed", "_selected_action": [message.pk]}
    )
    assert response.status_code == 302
    assert Message.objects.get(pk=message.pk).status == Status.FAILED


# --- Circuit breaker and rate limits -----------------------------------------------------------------------------


def test_messages_wait_without_spending_attempts_while_the_breaker_is_open(fake_twilio, settings, client):
    settings.BREAKER_FAIL_MAX, settings.BREAKER_RESET_TIMEOUT = 2, 60
    fake_twilio.down = True
    first, second = create(), create()
    run_burst_worker()  # two failures: the breaker opens
    breaker = ProviderBreaker("twilio")
    assert breaker.status().state == "open"
    fake_twilio.down = False

    later = create()
    run_burst_worker()
    later.refresh_from_db()
    assert later.status == Status.SCHEDULED
    assert later.attempts == 0
    assert later.events.last().code == "circuit_open"
    assert later.send_at >= timezone.now() + timedelta(seconds=55)
    Message.objects.filter(pk__in=[first.pk, second.pk, later.pk]).update(send_at=timezone.now())
    assert dispatch_due_messages() == 0  # nothing released while the provider is paused
    assert fake_twilio.request_count == 2

    settings.HEALTH_TOKEN = "health-token"
    ready = client.get("/health/ready", HTTP_AUTHORIZATION="Bearer health-token").json()
    assert ready["checks"]["providers"]["providers"]["sms"]["breaker"]["state"] == "open"
    assert ready["checks"]["providers"]["ok"] is False


def test_a_sender_believes_a_quiet_breaker_for_a_tenth_of_a_second_then_sees_another_workers_trip(settings):
    settings.BREAKER_FAIL_MAX, settings.BREAKER_RESET_TIMEOUT = 2, 60
    ProviderBreaker("twilio").reset()
    ours, theirs = ProviderBreaker("twilio"), ProviderBreaker("twilio")
    assert ours.admit() == (True, None, False)
    failure = TransientDeliveryError("down", provider="twilio")
    assert theirs.admit() == (True, None, False)
    theirs.record([failure, failure])  # another worker's calls trip it
    assert theirs.status().state == "open"

    assert ours.admit() == (True, None, False)  # our last read, a moment ago: closed and quiet
    time.sleep(QUIET_STATUS_MAX_AGE + 0.02)
    allowed, retry_at, probe = ours.admit()
    assert (allowed, probe) == (False, False)
    assert retry_at > time.time() + 50
    ProviderBreaker("twilio").reset()


def test_a_sender_reads_the_breaker_again_after_recording_a_failure(settings):
    settings.BREAKER_FAIL_MAX, settings.BREAKER_RESET_TIMEOUT = 2, 60
    ProviderBreaker("twilio").reset()
    breaker = ProviderBreaker("twilio")
    assert breaker.admit() == (True, None, False)
    breaker.record([TransientDeliveryError("down", provider="twilio")])
    ProviderBreaker("twilio").record([TransientDeliveryError("down", provider="twilio")])  # the second: open
    assert breaker.admit()[0] is False  # no waiting for the tenth of a second: it had a failure counted
    ProviderBreaker("twilio").reset()


def test_after_the_pause_one_probe_closes_the_breaker_while_the_rest_wait_for_it(fake_twilio, settings):
    settings.BREAKER_FAIL_MAX, settings.BREAKER_RESET_TIMEOUT = 1, 0
    fake_twilio.down = True
    create()
    run_burst_worker()
    breaker = ProviderBreaker("twilio")
    assert breaker.status().state == "open"
    fake_twilio.down = False

    assert breaker.admit() == (True, None, True)  # another worker's probe is in flight...
    waiting = create()
    run_burst_worker()
    waiting.refresh_from_db()
    assert waiting.status == Status.SCHEDULED  # ...so this one waits a moment, without spending an attempt
    assert waiting.attempts == 0
    assert waiting.send_at - timezone.now() <= timedelta(seconds=1)

    breaker.release_probe()
    Message.objects.filter(status=Status.SCHEDULED).update(send_at=timezone.now())
    assert dispatch_due_messages() == 1  # of the two due, only one goes: the probe
    run_burst_worker()
    assert breaker.status().state == "closed"
    assert dispatch_due_messages() == 1  # closed again: the rest follow
    run_burst_worker()
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}


def test_a_rate_limited_worker_defers_what_it_cannot_send_to_when_capacity_returns(fake_twilio, settings):
    settings.SMS_RATE_LIMIT = "2/minute"
    messages = [MessageFactory(status=Status.QUEUED) for _ in range(5)]
    assert send_messages([m.pk for m in messages]) == {Status.SENT: 2, Status.SCHEDULED: 3}
    statuses = [Message.objects.get(pk=m.pk) for m in messages]
    assert [m.status for m in statuses] == ["sent", "sent", "scheduled", "scheduled", "scheduled"]
    deferred = statuses[2:]
    assert all(m.attempts == 0 and m.events.last().code == "rate_limited" for m in deferred)
    # Two fit in each minute: the third waits for the first window, the fifth for the next one.
    assert timedelta(seconds=55) < deferred[0].send_at - timezone.now() <= timedelta(seconds=60)
    assert deferred[0].send_at == deferred[1].send_at
    assert deferred[2].send_at - deferred[0].send_at == timedelta(seconds=60)
    assert fake_twilio.request_count == 2


def test_a_job_held_back_by_the_rate_takes_over_no_more_jobs(fake_twilio, settings):
    settings.SMS_RATE_LIMIT = "2/minute"
    settings.SEND_BATCH_SIZE = settings.SEND_CONCURRENCY = 2  # jobs of two, taken over one at a time
    items = (message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body="Hi") for i in range(6))
    messages_create_many(items=items)
    queue = django_rq.get_queue("default")
    assert queue.count == 3

    run_burst_worker()

    # The first job sent its two, took the second job over and found the rate spent: it took no third.
    assert FinishedJobRegistry(queue=queue).count == 2
    assert Counter(Message.objects.values_list("status", flat=True)) == {Status.SENT: 2, Status.SCHEDULED: 4}
    assert fake_twilio.request_count == 2


def test_a_sender_limit_holds_back_only_that_senders_messages(fake_twilio, settings):
    settings.SMS_SENDER_RATE_LIMIT = "1/minute"
    messages = [create(sender="+15005550006"), create(sender="+15005550006"), create(sender="+15005550007")]
    run_burst_worker()
    assert [Message.objects.get(pk=m.pk).status for m in messages] == ["sent", "scheduled", "sent"]
    assert Message.objects.get(pk=messages[1].pk).events.last().code == "sender_rate_limited"


# --- Provider webhooks never move a message backwards -----------------------------------------------------------


def test_status_updates_out_of_order_or_twice_never_move_a_message_backwards():
    message = MessageFactory(status=Status.SENT)
    # delivered arrives, then a late "sent" and a duplicate "delivered", then a stray "failed"
    assert transition([message.pk], to_status=Status.DELIVERED) == [message.pk]
    assert transition([message.pk], to_status=Status.SENT) == []
    assert transition([message.pk], to_status=Status.DELIVERED) == []
    assert transition([message.pk], to_status=Status.FAILED) == []
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert list(message.events.values_list("to_status", flat=True)) == ["delivered"]
