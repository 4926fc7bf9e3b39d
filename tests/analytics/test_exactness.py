"""The issue's "it must show": after a real run (the API, a real RQ worker, the dispatcher's pass, the real provider
clients against the fake providers calling back a live server) with retries, delivery receipts (delivered and
undelivered), bounces, opens, clicks, complaints and opt-outs, every rollup equals a count over the messages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import selectors
from analytics.services.rollup import analytics_rollup
from deliveries.models import Message, Status
from deliveries.services.dispatch import dispatch_due_messages
from tests.analytics.counts import (
    expected_by_hour,
    expected_engaged,
    hourly_totals,
    minute_totals,
    opted_out_addresses,
    rolled_up_by_hour,
    rolled_up_engaged,
)
from tests.support import run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def post(api, **fields) -> int:
    response = api.post("/api/v1/messages/", fields, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def settled(fake, count: int) -> None:
    wait_for(
        lambda: len(fake.callbacks) >= count and fake.callbacks_in_flight == 0,
        timeout=20,
        message=f"{count} callbacks from the fake {fake.display_name}",
    )


def test_every_rollup_equals_a_count_over_the_messages_after_a_real_run(
    api, live_callbacks, fake_twilio, fake_postmark
):
    sms = lambda n: post(api, channel="sms", to=f"+1415555{n:04d}", body=f"Hello {n}")  # noqa: E731
    email = lambda n: post(api, channel="email", to=f"person{n}@example.com", subject="News", body="Hi")  # noqa: E731

    # Delivered, then undelivered receipts.
    for n in range(3):
        sms(n)
    run_burst_worker()
    settled(fake_twilio, 6)
    fake_twilio.configure(outcome="undelivered", error_code=30006)
    for n in range(3, 5):
        sms(n)
    run_burst_worker()
    settled(fake_twilio, 10)
    analytics_rollup()  # part of the run counted midway: the rest must add to it, not repeat it

    # Retries: Twilio answers 500, the messages wait their backoff, then go out when the dispatcher finds them due.
    fake_twilio.configure(outcome="delivered", fail_500_rate=1.0)
    retried = [sms(n) for n in range(5, 7)]
    run_burst_worker()
    assert set(Message.objects.filter(pk__in=retried).values_list("status", flat=True)) == {Status.SCHEDULED}
    fake_twilio.configure(fail_500_rate=0.0)
    Message.objects.filter(pk__in=retried).update(send_at=timezone.now() - timedelta(seconds=1))
    assert dispatch_due_messages() == 2
    run_burst_worker()
    settled(fake_twilio, 14)

    # Email: opens and clicks (several per message), a bounce, a complaint, an unsubscribe.
    fake_postmark.configure(outcome="delivered", opens=2, clicks=2)
    for n in range(3):
        email(n)
    run_burst_worker()
    settled(fake_postmark, 15)
    for outcome, n in (("bounce", 3), ("complaint", 4), ("unsubscribe", 5)):
        fake_postmark.configure(outcome=outcome, opens=0, clicks=0)
        email(n)
        run_burst_worker()
    settled(fake_postmark, 20)

    # Opt-outs by STOP reply; the next message to that number is suppressed.
    inbound_url = f"{live_callbacks.url}/webhooks/twilio/inbound/"
    for n in (0, 1):
        assert (
            fake_twilio.send_inbound(inbound_url, from_=f"+1415555{n:04d}", to="+15005550006", body="STOP")["status"]
            == 200
        )
    sms(0)
    run_burst_worker()

    analytics_rollup()

    assert rolled_up_by_hour() == expected_by_hour()
    assert rolled_up_engaged() == expected_engaged()
    assert minute_totals() == hourly_totals()
    figures = selectors.totals()
    assert figures[("sms", "delivered")] == 5 and figures[("sms", "undelivered")] == 2
    assert figures[("sms", "sending")] == 9  # seven messages, two of them sent twice
    assert figures[("sms", "suppressed")] == 1 and figures[("sms", "opted_out")] == 2
    assert figures[("email", "opened")] == 3 and figures[("email", "clicked")] == 3  # messages, not opens
    assert (figures[("email", "bounced")], figures[("email", "complained")], figures[("email", "opted_out")]) == (
        1,
        1,
        1,
    )
    assert figures[("sms", "opted_out")] + figures[("email", "opted_out")] == opted_out_addresses()
    assert (
        selectors.schedule_lag(timezone.now() - timedelta(hours=1))["count"]
        == Message.objects.exclude(sent_at=None).filter(events__to_status="sent").count()
    )
