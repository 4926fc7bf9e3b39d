"""Dependencies end to end: the API, a real RQ worker, the real Twilio client against the fake Twilio, and its
status callbacks to a live server deciding whether the dependent message goes."""

import pytest

from deliveries.models import Message, Status
from deliveries.services.dispatch import dispatch_due_messages
from tests.deliveries.test_feedback_end_to_end import post_message, wait_for_callbacks, wait_for_status
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_follow_up_goes_only_once_twilio_reports_the_first_delivered(api, live_callbacks, fake_twilio):
    first = post_message(api, channel="sms", to="+14155550100", body="Your order shipped")
    second = post_message(api, channel="sms", to="+14155550100", body="Rate us?", depends_on=first.pk)
    assert second.status == Status.WAITING

    run_burst_worker()
    assert [m["body"] for m in fake_twilio.received] == ["Your order shipped"]
    wait_for_status(first, Status.DELIVERED)
    wait_for_status(second, Status.SCHEDULED)
    wait_for_callbacks(fake_twilio, 2)

    assert dispatch_due_messages() == 1
    run_burst_worker()
    wait_for_status(second, Status.DELIVERED)
    assert [m["body"] for m in fake_twilio.received] == ["Your order shipped", "Rate us?"]


def test_the_follow_up_is_cancelled_when_the_first_is_undelivered(api, live_callbacks, fake_twilio):
    fake_twilio.configure(outcome="undelivered", error_code=30006)
    first = post_message(api, channel="sms", to="+14155550100", body="Your order shipped")
    second = post_message(api, channel="sms", to="+14155550100", body="Rate us?", depends_on=first.pk)

    run_burst_worker()
    wait_for_status(first, Status.UNDELIVERED)
    second = wait_for_status(second, Status.CANCELLED)
    assert second.last_error_message.startswith(f"Not sent: message #{first.pk} it depends on ended undelivered (30006")
    wait_for_callbacks(fake_twilio, 2)
    assert dispatch_due_messages() == 0
    run_burst_worker()
    assert len(fake_twilio.received) == 1
    assert Message.objects.filter(status=Status.WAITING).count() == 0
