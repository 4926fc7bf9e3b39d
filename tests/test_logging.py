"""No full recipient in any log line (the issue's test), and the lines about a message say which one.

Every channel sends through the real pipeline to the fake providers: the API, a real RQ worker in this process and
one in a process of its own, the real provider clients, the fakes calling back a live server (receipts, opens,
clicks), an inbound STOP, failures whose provider text echoes the address, and a campaign. Every logger is at
DEBUG, Django's SQL log included, and the handler is the one settings.LOGGING builds, in the text and in the JSON
format. Every line this process and the worker process wrote is searched for every recipient.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from rq import SimpleWorker

import deliveries.backends.sms.twilio  # noqa: F401 - sets the twilio loggers' level on import: before ours
from campaigns.services.campaign_lifecycle import campaign_launch
from deliveries.models import Message, Status
from messaging_project.log_context import logging_config
from tests.campaigns.campaign_support import new_campaign
from tests.factories import ContactFactory, ContactListFactory
from tests.support import process_env, provider_env, start_manage, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SMS_TO = "+14155550100"
WHATSAPP_TO = "+14155550123"
PSID = "2494432963985342"
EMAIL_TO = "ada.lovelace@example.com"
# The fake Twilio refuses it with "The 'To' phone number: +15005550002, is not currently reachable via SMS."
UNREACHABLE = "+15005550002"
# The fake Postmark refuses it as inactive; anymail's error names the address.
INACTIVE_EMAIL = "grace.hopper@inactive.example"
STOPPED = "+14155550177"
CAMPAIGN_PHONES = ["+14155550141", "+14155550142"]
# What the worker process sends.
PROCESS_SMS_TO = "+14155550188"
PROCESS_EMAIL_TO = "alan.turing@example.com"
PROCESS_PSID = "3141592653589793"
PROCESS_WHATSAPP_TO = "+14155550199"

PHONES = [SMS_TO, WHATSAPP_TO, UNREACHABLE, STOPPED, *CAMPAIGN_PHONES, PROCESS_SMS_TO, PROCESS_WHATSAPP_TO]
EMAILS = [EMAIL_TO, INACTIVE_EMAIL, PROCESS_EMAIL_TO]
PSIDS = [PSID, PROCESS_PSID]


def full_recipients_in(text: str) -> list[str]:
    """Every recipient found whole in `text`: a number's digits after its country code (however it is written
    around them), an address (its @ maybe URL-encoded), a PSID."""
    found = [phone for phone in PHONES if phone[2:] in text]  # +1 numbers: the 10 digits after the country code
    found += [email for email in EMAILS if email in text or email.replace("@", "%40") in text]
    found += [psid for psid in PSIDS if psid in text]
    return found


@pytest.fixture
def every_logger_at_debug():
    """Every logger at DEBUG (the libraries' too), and every database connection logging its SQL."""
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)

    def log_sql(connection, **kwargs):
        connection.force_debug_cursor = True

    connection_created.connect(log_sql)
    connection.force_debug_cursor = True
    yield
    connection.force_debug_cursor = False
    connection_created.disconnect(log_sql)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(params=["text", "json"])
def log_lines(request, settings, every_logger_at_debug):
    """The handler settings.LOGGING builds for this format, at DEBUG, writing to a buffer instead of stderr."""
    log_format = request.param
    logging.config.dictConfig(logging_config(log_format=log_format, level="DEBUG"))
    [handler] = logging.getLogger().handlers
    buffer = io.StringIO()
    handler.setStream(buffer)
    logging.getLogger("django.db.backends").setLevel(logging.DEBUG)
    buffer.format = log_format  # type: ignore[attr-defined]
    yield buffer
    logging.config.dictConfig(settings.LOGGING)


def post_message(api, **fields) -> Message:
    response = api.post("/api/v1/messages/", fields, format="json")
    assert response.status_code == 201, response.json()
    return Message.objects.get(pk=response.json()["id"])


def run_worker_at_debug() -> None:
    import django_rq

    worker = django_rq.get_worker("high", "default", "low", worker_class=SimpleWorker)
    worker.work(burst=True, logging_level="DEBUG")


def wait_until_settled(*messages: Message, timeout: float = 15) -> None:
    final = {Status.DELIVERED, Status.FAILED, Status.UNDELIVERED, Status.SUPPRESSED}

    def settled():
        return all(Message.objects.get(pk=m.pk).status in final for m in messages)

    wait_for(settled, timeout=timeout, message="every message to reach its final status")


def worker_process_output(live_server, fake_twilio, fake_postmark, fake_messenger, log_format: str) -> str:
    env = process_env(
        **provider_env(fake_twilio, fake_postmark),
        WHATSAPP_BACKEND="twilio",
        TWILIO_WHATSAPP_FROM="whatsapp:+14155238886",
        MESSENGER_BACKEND="graph",
        MESSENGER_PAGE_ACCESS_TOKEN=fake_messenger.access_token,
        MESSENGER_APP_SECRET=fake_messenger.app_secret,
        MESSENGER_GRAPH_API_URL=fake_messenger.url,
        PUBLIC_BASE_URL=live_server.url,
        LOG_FORMAT=log_format,
        LOG_LEVEL="DEBUG",
    )
    process = start_manage("run_worker", "--burst", "-v", "2", env=env)
    try:
        process.wait(timeout=60)
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    return output


def test_no_full_recipient_in_any_log_line_of_any_channel_any_format(
    api, live_callbacks, fake_twilio, fake_postmark, fake_messenger, log_lines
):
    fake_postmark.configure(outcome="delivered", opens=1, clicks=1, click_url="https://example.com/offer")
    fake_twilio.send_inbound(
        f"{live_callbacks.url}/webhooks/twilio/inbound/", from_=STOPPED, to="+15005550006", body="STOP"
    )
    sent = [
        post_message(api, channel="sms", to=SMS_TO, body="Your code is 1234", category="transactional"),
        post_message(api, channel="whatsapp", to=WHATSAPP_TO, body="Your table is ready"),
        post_message(api, channel="messenger", to=PSID, body="Your order shipped", category="transactional"),
        post_message(api, channel="email", to=EMAIL_TO, subject="News", body="Hello", html_body="<p>Hello</p>"),
    ]
    refused = [
        post_message(api, channel="sms", to=UNREACHABLE, body="Hello"),
        post_message(api, channel="email", to=INACTIVE_EMAIL, subject="News", body="Hello"),
    ]
    suppressed = post_message(api, channel="sms", to=STOPPED, body="Spring sale!")
    audience = ContactListFactory()
    for phone in CAMPAIGN_PHONES:
        ContactFactory(lists=[audience], phone=phone, sms_consent=True)
    campaign_launch(campaign=new_campaign(audience), by="test")

    run_worker_at_debug()
    wait_until_settled(*sent, *refused, suppressed, *Message.objects.filter(campaign__isnull=False))
    assert [Message.objects.get(pk=m.pk).status for m in refused] == [Status.FAILED, Status.FAILED]
    assert Message.objects.get(pk=suppressed.pk).status == Status.SUPPRESSED

    in_process = [
        post_message(api, channel="sms", to=PROCESS_SMS_TO, body="Hello"),
        post_message(api, channel="whatsapp", to=PROCESS_WHATSAPP_TO, body="Hello"),
        post_message(api, channel="messenger", to=PROCESS_PSID, body="Hello", category="transactional"),
        post_message(api, channel="email", to=PROCESS_EMAIL_TO, subject="News", body="Hello"),
    ]
    process_output = worker_process_output(live_callbacks, fake_twilio, fake_postmark, fake_messenger, log_lines.format)
    wait_until_settled(*in_process)
    wait_for(lambda: fake_twilio.callbacks_in_flight == 0, timeout=15, message="the last receipts")

    lines = log_lines.getvalue().splitlines()
    worker_lines = process_output.splitlines()
    assert len(lines) > 200 and len(worker_lines) > 20, "too few lines: is everything logged at DEBUG?"
    leaking = [line for line in lines + worker_lines if full_recipients_in(line)]
    assert not leaking, leaking[:5]
    # Nor a secret: urllib3 logs the Send API's URL, whose query carries the page's access token.
    assert not [line for line in lines + worker_lines if fake_messenger.access_token in line]
    # The lines did see them, masked: the refusals name their (masked) recipients.
    text = "\n".join(lines)
    assert "+1500•••0002" in text and "g•••@inactive.example" in text
    assert "a•••@example.com" in text  # Django's SQL log, masked

    if log_lines.format == "json":
        check_json_lines(lines, worker_lines, refused)
    else:
        check_text_lines(lines, worker_lines)


def check_json_lines(lines: list[str], worker_lines: list[str], refused: list[Message]) -> None:
    records = [json.loads(line) for line in lines]
    worker_records = [json.loads(line) for line in worker_lines if line.strip()]
    for record in records + worker_records:
        assert {"timestamp", "level", "logger", "message"} <= set(record), record
    # Each channel's run says which job, channel and provider, in this process and in the worker's.
    for batch in (records, worker_records):
        runs = [r for r in batch if r["logger"] == "deliveries.sending.job" and r["message"].startswith("Sent")]
        assert {r["channel"] for r in runs} == {"sms", "whatsapp", "messenger", "email"}, runs
        assert all(r["job_id"] and r["provider"] for r in runs), runs
    # A failed call's line is about its message: which one, which attempt, to whom (masked), in which job.
    failures = {r["message_id"]: r for r in records if r["logger"] == "deliveries.sending.outcomes"}
    assert set(failures) == {m.pk for m in refused}
    unreachable, inactive = (failures[m.pk] for m in refused)
    assert (unreachable["recipient"], unreachable["channel"], unreachable["provider"]) == (
        "+1500•••0002",
        "sms",
        "twilio",
    )
    assert (inactive["recipient"], inactive["channel"]) == ("g•••@inactive.example", "email")
    assert all(r["attempt"] == 1 and r["job_id"] for r in (unreachable, inactive))
    # What a library logs meanwhile carries the context too: the SQL of a Twilio receipt names its message.
    receipt_sql = [r for r in records if r["logger"] == "django.db.backends" and r.get("provider") == "twilio"]
    assert any(r.get("message_id") and r.get("recipient", "").startswith("+1415•••") for r in receipt_sql)
    # An email's open or click finds its message first, then says which.
    email_sql = [r for r in records if r["logger"] == "django.db.backends" and r.get("provider") == "postmark"]
    assert any(r.get("message_id") and r.get("recipient") == "a•••@example.com" for r in email_sql)


def check_text_lines(lines: list[str], worker_lines: list[str]) -> None:
    for batch in (lines, worker_lines):
        runs = [line for line in batch if " deliveries.sending.job Sent through " in line]
        assert runs and all(re.search(r" \[job=\S+ channel=\w+ provider=\w+\]$", line) for line in runs), runs
    failures = [line for line in lines if " deliveries.sending.outcomes " in line]
    assert len(failures) == 2
    assert all(re.search(r"\[job=\S+ msg=\d+ attempt=1 channel=\w+ provider=\w+ to=\S+•••\S+\]$", f) for f in failures)
