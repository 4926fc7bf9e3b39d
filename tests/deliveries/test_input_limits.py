"""What a message request may hold, refused with a 400 naming the field (and the limit) on every path: the API,
a batch, the admin's compose page, send_bulk. No input reaches the database unchecked, and none answers 500."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.input_limits import MAX_JSON_BYTES, json_value_problem
from deliveries.models import Batch, Message, Status
from tests.factories import TemplateFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/messages/"


def sms(**overrides):
    return {"channel": "sms", "to": "+14155550100", "body": "Your code is 1234", **overrides}


def refused(api, payload, field):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert not Message.objects.exists()
    return " ".join(errors[field])


def test_attack_3_a_valid_for_past_a_year_is_a_400_naming_it_not_a_500(api):
    assert refused(api, sms(valid_for=999999999999), "valid_for") == (
        "Ensure this value is less than or equal to 31536000."
    )


def test_an_sms_over_1600_characters_is_refused_at_creation_with_the_count_and_the_segments(api):
    reason = refused(api, sms(body="x" * 1601), "body")
    assert reason == "The body is 1,601 characters (11 segments); an SMS takes at most 1,600 characters."


def test_an_sms_of_exactly_1600_characters_is_accepted(api):
    assert api.post(URL, sms(body="x" * 1600), format="json").status_code == 201


def test_a_whatsapp_body_over_1600_characters_is_refused_too(api):
    payload = {"channel": "whatsapp", "to": "whatsapp:+14155550100", "body": "é" * 1601}
    assert refused(api, payload, "body") == (
        "The body is 1,601 characters; a WhatsApp message takes at most 1,600 characters."
    )


def test_a_template_that_renders_over_1600_characters_is_refused_naming_the_template(api):
    TemplateFactory(slug="long", body="{{ text }}", variables={"text": None})
    reason = refused(api, sms(body="", template="long", context={"text": "y" * 2000}), "template")
    assert reason.startswith("The body is 2,000 characters (14 segments)")


def test_an_email_body_may_be_long(api):
    payload = {"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "x" * 100_000}
    assert api.post(URL, payload, format="json").status_code == 201


@pytest.mark.parametrize("when", ["2001-01-01T00:00:00Z", "now-6min"])
def test_a_send_at_more_than_5_minutes_in_the_past_is_refused(api, when):
    if when == "now-6min":
        when = (timezone.now() - timedelta(minutes=6)).isoformat()
    reason = refused(api, sms(send_at=when), "send_at")
    assert reason.endswith("is more than 5 minutes in the past; leave send_at out to send now.")


def test_a_send_at_a_moment_ago_is_taken_as_now(api):
    response = api.post(URL, sms(send_at=(timezone.now() - timedelta(minutes=2)).isoformat()), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == Status.QUEUED


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"send_at": "9999-12-31T23:59:59Z"}, "send_at", "send_at is at most 365 days ahead."),
        ({"send_at": "9999-12-31T23:59:59Z", "valid_for": 60}, "send_at", "send_at is at most 365 days ahead."),
        ({"expires_at": "9999-12-31T23:59:59Z"}, "expires_at", "The deadline is at most 365 days after"),
        ({"valid_for": 0}, "valid_for", "greater than or equal to 1"),
        ({"valid_for": -5}, "valid_for", "greater than or equal to 1"),
        ({"depends_on": 2**70}, "depends_on", "less than or equal to 9223372036854775807"),
        ({"depends_on": -1}, "depends_on", "greater than or equal to 1"),
        ({"depends_on_delay": 10**30}, "depends_on_delay", "less than or equal to 31536000"),
        ({"body": "Hi\x00"}, "body", "Null characters are not allowed."),
        ({"context": {"name": "Ada\x00"}}, "context", "contains a NUL character"),
        ({"context": {"\x00": "Ada"}}, "context", "contains a NUL character"),
        ({"metadata": {"blob": "x" * MAX_JSON_BYTES}}, "metadata", f"the limit is {MAX_JSON_BYTES:,}"),
        ({"media_urls": ["https://example.com/a.png"] * 11}, "media_urls", "At most 10 media URLs"),
        ({"subject": "s" * 256}, "subject", "no more than 255 characters"),
        ({"template": "t" * 101}, "template", "no more than 100 characters"),
    ],
)
def test_an_out_of_range_value_is_a_400_naming_the_field(api, overrides, field, reason):
    assert reason in refused(api, sms(**overrides), field)


def test_a_number_json_reads_as_infinity_is_refused_in_a_json_field(api):
    body = '{"channel": "sms", "to": "+14155550100", "body": "Hi", "metadata": {"ratio": 1e999}}'
    response = api.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"metadata": ["This value contains NaN or Infinity, which JSON cannot store."]}


def test_a_mistyped_field_is_refused_by_name_instead_of_sending_at_once(api):
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    response = api.post(URL, sms(sendat=later, priorty="high"), format="json")
    assert response.status_code == 400
    assert response.json() == {"priorty": ["Unknown field."], "sendat": ["Unknown field."]}
    assert not Message.objects.exists()


def test_unknown_fields_are_named_alongside_the_other_errors(api):
    response = api.post(URL, {"channel": "fax", "to": "+14155550100", "sendat": "x"}, format="json")
    assert set(response.json()) == {"channel", "sendat"}


def test_a_batch_refuses_each_item_too_long_or_with_unknown_fields_and_stores_the_others(api):
    response = api.post(
        "/api/v1/messages/batch/",
        {
            "defaults": {"channel": "sms"},
            "messages": [
                {"to": "+14155550101", "body": "Hi"},
                {"to": "+14155550102", "body": "x" * 1601},
                {"to": "+14155550103", "body": "Hi", "sendat": "2030-01-01T00:00:00Z"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201
    results = response.json()["results"]
    assert "id" in results[0]
    assert results[1]["errors"] == {
        "body": ["The body is 1,601 characters (11 segments); an SMS takes at most 1,600 characters."]
    }
    assert results[2]["errors"] == {"sendat": ["Unknown field."]}
    assert Message.objects.count() == 1


def test_a_batch_envelope_with_an_unknown_field_is_refused_whole(api):
    response = api.post("/api/v1/messages/batch/", {"messages": [sms()], "atomc": True}, format="json")
    assert response.status_code == 400
    assert response.json() == {"atomc": ["Unknown field."]}
    assert not Batch.objects.exists()


def test_the_admin_compose_page_refuses_an_sms_over_1600_characters(admin_client):
    response = admin_client.post(
        "/admin/deliveries/message/compose/",
        {"channel": "sms", "to": "+14155550100", "body": "x" * 1700, "priority": "default"},
    )
    assert response.status_code == 200
    assert "The body is 1,700 characters (12 segments); an SMS takes at most 1,600 characters." in (
        response.content.decode()
    )
    assert not Message.objects.exists()


def nested(depth):
    value = "deep"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": [1, 2, {"b": "ok"}]}, None),
        ({"a": "\ud800"}, "contains an unpaired surrogate character"),
        ({"a": float("nan")}, "contains NaN or Infinity, which JSON cannot store"),
        ({"a": nested(21)}, "is nested more than 20 levels deep"),
        ({"a": "é" * 9000}, "is 18,008 bytes as JSON; the limit is 16,384"),
    ],
)
def test_json_value_problem_names_what_a_json_column_cannot_hold(value, problem):
    assert json_value_problem(value) == problem


def test_the_compose_page_counts_characters_live_and_its_preview_gives_the_segments(admin_client):
    page = admin_client.get("/admin/deliveries/message/compose/").content.decode()
    assert "deliveries/compose_counter.js" in page
    response = admin_client.post(
        "/admin/deliveries/message/compose/",
        {"channel": "sms", "to": "+14155550100", "body": "x" * 161, "priority": "default", "_preview": "Preview"},
    )
    assert "GSM-7 · 161 characters · <strong>2 segments</strong>" in response.content.decode()
    assert not Message.objects.exists()
