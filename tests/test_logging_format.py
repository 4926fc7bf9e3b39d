"""The log formats, the log context and the masks, one piece at a time (the whole pipeline: test_logging.py)."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import logging.config
import re
import threading

import pytest

from messaging_project.log_context import current_log_context, log_context, logging_config
from messaging_project.log_redaction import mask_personal_data, mask_recipient, mask_sensitive
from tests.support import run_manage


@pytest.fixture
def log_to(settings):
    """A function that configures logging as settings.LOGGING does, in the given format, into a buffer."""

    def configure(log_format: str, level: str = "DEBUG") -> io.StringIO:
        logging.config.dictConfig(logging_config(log_format=log_format, level=level))
        [handler] = logging.getLogger().handlers
        buffer = io.StringIO()
        handler.setStream(buffer)
        return buffer

    yield configure
    logging.config.dictConfig(settings.LOGGING)


@pytest.mark.parametrize(
    ("recipient", "shown"),
    [
        ("+14155550100", "+1415•••0100"),
        ("whatsapp:+14155550100", "whatsapp:+1415•••0100"),
        ("+442079460018", "+44207•••0018"),
        ("+4712345678", "+47123•••78"),  # a short national number keeps less, so at least 3 digits stay hidden
        ("ada@example.com", "a•••@example.com"),
        ("2494432963985342", "•••5342"),
        ("not an address", "•••"),
    ],
)
def test_a_recipient_is_shown_in_the_specs_shapes(recipient, shown):
    assert mask_recipient(recipient) == shown


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("The 'To' number +14155550100 is not valid", "The 'To' number +1415•••0100 is not valid"),
        ("To=%2B14155550100&Body=Hi", "To=+1415•••0100&Body=Hi"),
        ("to +1 (415) 555-0100 today", "to +1415•••0100 today"),
        ("call (415) 555-0100 or 020 7946 0018", "call •••0100 or •••0018"),
        (
            "Recipients refused: ['ada@example.com', 'bob%40example.org']",
            "Recipients refused: ['a•••@example.com', 'b•••@example.org']",
        ),
        ("psid 2494432963985342 wrote", "psid •••5342 wrote"),
        ("VALUES ('+14155550100', 'ada+news@Example.COM')", "VALUES ('+1415•••0100', 'a•••@Example.COM')"),
    ],
)
def test_the_safety_net_masks_whatever_looks_like_a_recipient(text, masked):
    assert mask_personal_data(text) == masked


def test_ids_times_and_addresses_of_machines_are_left_alone():
    text = (
        "2026-12-07 15:44:27,123 message 12345678 job send-5e7c90fb5cf44eee SM0123456789abcdef0123456789abcdef "
        "at 127.0.0.1:8000 +00:00 in 0:00:00.404762s"
    )
    assert mask_personal_data(text) == text


def test_masking_twice_changes_nothing_more():
    once = mask_personal_data("+14155550100 ada@example.com 2494432963985342 whatsapp:+14155550123")
    assert mask_personal_data(once) == once


def test_secrets_in_a_logged_query_string_are_masked():
    line = '"POST /v19.0/me/messages?access_token=EAAB123&appsecret_proof=9f86d0 HTTP/1.1" 200 99'
    assert mask_sensitive(line) == '"POST /v19.0/me/messages?access_token=***&appsecret_proof=*** HTTP/1.1" 200 99'


def test_text_lines_carry_the_context_as_a_compact_suffix_only_when_set(log_to):
    buffer = log_to("text")
    logger = logging.getLogger("tidings.test")
    logger.info("Before")
    with log_context(job_id="send-1", channel="sms", provider="twilio"):
        with log_context(message_id=7, attempt=2, recipient="+14155550100"):
            logger.info("About one message")
        logger.info("About the batch")
    first, second, third = buffer.getvalue().splitlines()
    assert first.endswith(" INFO tidings.test Before")
    assert second.endswith(
        " INFO tidings.test About one message [job=send-1 msg=7 attempt=2 channel=sms provider=twilio to=+1415•••0100]"
    )
    assert third.endswith(" About the batch [job=send-1 channel=sms provider=twilio]")


def test_json_lines_are_one_object_each_with_the_context_fields(log_to):
    buffer = log_to("json")
    batch = log_context(job_id="send-1", campaign_id=3, channel="email", provider="postmark", message_id=9)
    with batch, log_context(attempt=1, recipient="ada@example.com"):
        logging.getLogger("tidings.test").warning("Refused %s", "ada@example.com", extra={"sent_to": ["bob@x.org"]})
    [line] = buffer.getvalue().splitlines()
    record = json.loads(line)
    assert list(record)[0] == "timestamp"
    assert record["level"] == "WARNING" and record["logger"] == "tidings.test"
    assert record["message"] == "Refused a•••@example.com"
    assert record["sent_to"] == ["b•••@x.org"]  # a library's extra= is masked too
    assert {k: record[k] for k in ("job_id", "campaign_id", "channel", "provider", "message_id", "attempt")} == {
        "job_id": "send-1",
        "campaign_id": 3,
        "channel": "email",
        "provider": "postmark",
        "message_id": 9,
        "attempt": 1,
    }
    assert record["recipient"] == "a•••@example.com"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_exception_whose_text_echoes_the_number_is_masked_in_its_traceback(log_to, log_format):
    buffer = log_to(log_format)
    try:
        raise ValueError("Unable to create record: The 'To' number +14155550100 is not a valid phone number.")
    except ValueError:
        logging.getLogger("twilio.http_client").exception("Unexpected error sending to %s", "ada@example.com")
    output = buffer.getvalue()
    assert "4155550100" not in output and "ada@example.com" not in output
    assert "+1415•••0100 is not a valid phone number" in output and "a•••@example.com" in output


def test_a_record_whose_arguments_do_not_fit_its_format_is_still_masked(log_to):
    buffer = log_to("text")
    logging.getLogger("tidings.test").error("To %s and %s", "+14155550100")
    assert "4155550100" not in buffer.getvalue()


def test_a_thread_pools_call_sees_the_context_only_in_a_copy():
    seen = {}

    def call(key):
        seen[key] = dict(current_log_context())

    with log_context(job_id="send-1", channel="sms"):
        plain = threading.Thread(target=call, args=("plain",))
        copied = threading.Thread(target=contextvars.copy_context().run, args=(call, "copied"))
        for thread in (plain, copied):
            thread.start()
            thread.join()
    assert seen == {"plain": {}, "copied": {"job_id": "send-1", "channel": "sms"}}
    assert current_log_context() == {}


def test_an_unknown_context_field_is_refused():
    with pytest.raises(TypeError, match="Unknown log context field"), log_context(phone="+14155550100"):
        pass


def test_a_bad_log_format_stops_the_process_naming_the_setting_and_its_values():
    result = run_manage("check", LOG_FORMAT="xml", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "LOG_FORMAT must be one of text, json (text is the default), not 'xml'." in result.stderr


def test_json_logs_from_a_command_parse_line_by_line():
    result = run_manage(
        "shell", "-c", "import logging; logging.getLogger('x').warning('To %s', '+14155550100')", LOG_FORMAT="json"
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert json.loads(line)["message"] == "To +1415•••0100"


@pytest.mark.django_db
def test_an_api_request_gets_an_id_its_log_lines_and_its_response_carry(api, log_to):
    buffer = log_to("text")
    response = api.get("/api/v1/messages/999999/", HTTP_X_REQUEST_ID="lb-4f9a2c71e0")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "lb-4f9a2c71e0"
    assert "Not Found: /api/v1/messages/999999/ [request=lb-4f9a2c71e0]" in buffer.getvalue()


@pytest.mark.django_db
def test_a_request_id_that_could_forge_a_line_is_replaced(api):
    response = api.get("/api/v1/messages/", HTTP_X_REQUEST_ID="x\n2026-12-07 INFO forged")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_a_bad_log_level_stops_the_process_naming_the_setting_and_its_values():
    result = run_manage("check", LOG_LEVEL="loud", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'LOUD'." in result.stderr
