"""Alert notices: to ADMINS by email and as Slack-compatible JSON to a real local webhook sink, once per change,
retried after a failure, never twice with several checkers, never breaking the dispatcher."""

import json
from io import StringIO

import django_rq
import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from rq.worker import Worker

from analytics.services.rollup import analytics_rollup
from console.models import AlertEvent
from console.services.alert_notices import notices_send
from console.services.alerts import alert_apply, alerts_check
from deliveries.models import Message, Status
from deliveries.services.heartbeat import Heartbeat
from deliveries.services.messages import message_create, message_request_validate
from tests.console.alert_support import finding
from tests.support import CallbackReceiver, at_once, run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)

SINK_PATH = "/services/T000/B000/secret-part-of-the-url"
INVALID_NUMBER = "+15005550001"  # Twilio's (and the fake's) test number that is refused with 21211


@pytest.fixture
def sink(settings):
    with CallbackReceiver() as receiver:
        settings.ALERT_WEBHOOK_URL = receiver.url + SINK_PATH
        settings.ADMINS = [("Ops", "ops@example.com")]
        yield receiver


def posted_texts(sink):
    return [json.loads(request["body"])["text"] for request in sink.requests]


def send_sms(*numbers):
    for number in numbers:
        request, content = message_request_validate(channel="sms", to=number, body="Hello")
        message_create(request=request, content=content)
    run_burst_worker()


def test_an_alert_fires_once_when_failures_pass_the_threshold_and_once_when_they_clear(settings, sink, fake_twilio):
    settings.ALERT_FAILURE_RATE, settings.ALERT_FAILURE_MIN_SENDS = 0.2, 10
    settings.ALERT_CLEAR_AFTER_SECONDS = 0
    Heartbeat().beat()  # a dispatcher and a worker alive: only the failure rate has anything to say
    worker = Worker(["default"], connection=django_rq.get_connection("default"))
    worker.register_birth()

    def check():
        analytics_rollup()
        return {line.key: line for line in alerts_check()}["failure_rate"]

    try:
        send_sms(*[f"+1415555{n:04d}" for n in range(9)], INVALID_NUMBER)  # 1 of 10: under the threshold
        assert check().state == "clear"
        send_sms(INVALID_NUMBER, INVALID_NUMBER, INVALID_NUMBER)  # 4 of 13: over it
        assert Message.objects.filter(status=Status.FAILED).count() == 4
        fired = check()
        assert (fired.state, fired.changed) == ("firing", "fired")
        assert fired.detail.startswith("31% of the last 5 minutes' 13 sends failed or were undelivered")
        assert check().changed == ""  # still failing: nothing more to say

        send_sms(*[f"+1415556{n:04d}" for n in range(30)])  # 4 of 43: under again
        cleared = check()
        assert (cleared.state, cleared.changed) == ("clear", "cleared")
        assert check().changed == ""
    finally:
        worker.register_death()

    texts = posted_texts(sink)
    assert len(texts) == 2, texts
    assert texts[0].startswith("[Tidings] FIRING: Failure rate (failure_rate): 31% of the last 5 minutes' 13 sends")
    assert "Next: Filter the message list by Failed and Undelivered" in texts[0]
    assert texts[1].startswith("[Tidings] CLEARED: Failure rate (failure_rate): 9% of the last 5 minutes' 43 sends")
    assert all(request["path"] == SINK_PATH for request in sink.requests)
    assert all(request["headers"]["Content-Type"] == "application/json" for request in sink.requests)
    assert [message.subject for message in mail.outbox] == [
        "[Tidings] Alert fired: Failure rate",
        "[Tidings] Alert cleared: Failure rate",
    ]
    assert mail.outbox[0].to == ["ops@example.com"]
    assert list(AlertEvent.objects.values_list("kind", flat=True).order_by("id")) == ["fired", "cleared"]


def test_a_sink_that_fails_is_logged_and_tried_again_at_the_next_check_and_email_is_not_sent_twice(
    settings, sink, caplog
):
    sink.status = 500
    alert_apply(finding(firing=True), now=timezone.now())
    assert notices_send() == 1  # the email went
    event = AlertEvent.objects.get()
    assert (event.emailed_at is not None, event.posted_at, event.attempts) == (True, None, 1)
    assert event.last_error == "webhook: HTTP 500 from the webhook"
    assert "Could not send the alert notice" in caplog.text and "trying again at the next check" in caplog.text

    sink.status = 200
    assert notices_send() == 1
    event.refresh_from_db()
    assert event.posted_at is not None and event.attempts == 2 and event.last_error == ""
    assert len(sink.requests) == 2 and len(mail.outbox) == 1
    assert notices_send() == 0  # nothing owed any more


def test_an_unreachable_sink_never_breaks_the_dispatchers_loop_and_its_secret_path_stays_out_of_the_log(
    settings, caplog
):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:1" + SINK_PATH
    settings.ALERT_WEBHOOK_TIMEOUT = 2
    settings.DISPATCHER_PERIODIC_TASKS = [("console.services.alerts.alerts_check", 60)]
    out = StringIO()
    call_command("run_dispatcher", "--once", stdout=out)  # a dispatcher pass runs the check: no worker, no beat
    assert "Dispatcher stopped." in out.getvalue()
    assert "no_worker" in set(AlertEvent.objects.values_list("alert__key", flat=True))  # it beats itself
    assert not AlertEvent.objects.filter(posted_at__isnull=False).exists()
    # The first notice tried the sink; the rest wait for the next check rather than each wait for a timeout.
    [tried] = AlertEvent.objects.exclude(last_error="")
    assert tried.last_error.startswith("webhook: ConnectionError")
    assert "Could not send the alert notice" in caplog.text
    assert "secret-part-of-the-url" not in caplog.text
    assert "secret-part-of-the-url" not in "".join(event.last_error for event in AlertEvent.objects.all())


def test_several_checkers_sending_at_once_post_each_notice_once(sink):
    for n in range(5):
        alert_apply(finding(f"alert_{n}", firing=True), now=timezone.now())
    at_once(notices_send, times=6)
    assert sorted(posted_texts(sink)) == sorted(
        f"[Tidings] FIRING: Test alert (alert_{n}): a figure. Next: Do the thing." for n in range(5)
    )
    assert len(mail.outbox) == 5
    assert AlertEvent.objects.filter(posted_at__isnull=True).count() == 0
