"""Velocity limits at creation (issue #24, "Fraud"): SMS pumping held after the limit, one-time codes under the
strictest limits, counted in Redis on every entry point (docs/guard.md, "Velocity limits and one-time codes")."""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from freezegun import freeze_time
from rest_framework.test import APIClient

from deliveries.models import Message, MessageEvent, Status
from deliveries.services.api_keys import api_key_create
from deliveries.services.bulk import messages_create_many
from deliveries.services.messages import message_request_validate

pytestmark = pytest.mark.django_db

OTP = {"channel": "sms", "body": "Your code is 123456", "category": "transactional", "purpose": "otp"}
PUMPED_RANGE = "+4474001"  # 7 digits after the +: VELOCITY_PREFIX_DIGITS' default


def post(api, **fields):
    response = api.post("/api/v1/messages/", fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def client_for(name):
    key, raw = api_key_create(name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_pumping_burst_of_one_time_codes_to_one_range_is_held_after_twenty_distinct_numbers(api):
    # 1,000 codes to 1,000 numbers of one range from one key, as fast as the test client posts them.
    answers = [post(api, to=f"{PUMPED_RANGE}{n:05d}", **OTP) for n in range(1000)]
    assert [answer["status"] for answer in answers] == ["queued"] * 20 + ["held"] * 980
    held = answers[20]
    assert held["last_error_code"] == "held:velocity:prefix"
    assert held["last_error_message"] == (
        "Held for review: 21 distinct numbers in +4474001 in the last hour passed the one-time-code limit of 20."
    )
    assert answers[-1]["last_error_message"].startswith("Held for review: 21 distinct numbers in +4474001")
    assert Message.objects.filter(status=Status.HELD).count() == 980
    # Held, never queued: no job for them.
    assert not Message.objects.filter(status=Status.HELD).exclude(job_id="").exists()
    event = MessageEvent.objects.get(message_id=held["id"])
    assert (event.to_status, event.code) == ("held", "held:velocity:prefix")
    assert event.detail == f"Created by API key test-client. {held['last_error_message']}"
    # Another range is not held by this one's surge.
    assert post(api, to="+447400299999", **OTP)["status"] == "queued"


def test_one_time_codes_to_one_number_are_held_after_five_an_hour_by_default(api):
    statuses = [post(api, to="+447400123456", **OTP)["status"] for _ in range(6)]
    assert statuses == ["queued"] * 5 + ["held"]
    held = Message.objects.get(status=Status.HELD)
    assert held.last_error_code == "held:velocity:recipient"
    assert held.last_error_message == (
        "Held for review: 6 one-time codes to +447400123456 in the last hour passed the one-time-code limit of 5."
    )


def test_ordinary_messages_have_no_velocity_limit_by_default(api, clean_redis):
    for _ in range(30):
        assert post(api, channel="sms", to="+447400123456", body="Your parcel", category="transactional")["status"] == (
            "queued"
        )
    for n in range(30):
        assert post(api, channel="sms", to=f"{PUMPED_RANGE}{n:05d}", body="News")["status"] == "queued"
    # Nothing was counted: with every limit off, creating a message does not touch Redis.
    assert clean_redis.keys("tidings:velocity:*") == []


def test_recipient_hourly_limit_holds_ordinary_messages_when_set(api, settings):
    settings.RECIPIENT_HOURLY_LIMIT = 3
    statuses = [post(api, channel="sms", to="+447400123456", body=f"Hello {n}")["status"] for n in range(4)]
    assert statuses == ["queued"] * 3 + ["held"]
    held = Message.objects.get(status=Status.HELD)
    assert held.last_error_code == "held:velocity:recipient"
    assert held.last_error_message == (
        "Held for review: 4 messages to +447400123456 in the last hour passed the limit of 3 per recipient "
        "(RECIPIENT_HOURLY_LIMIT)."
    )
    # Another number has its own count; email counts per recipient too.
    assert post(api, channel="sms", to="+447400123457", body="Hello")["status"] == "queued"
    email = {"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"}
    assert [post(api, **email)["status"] for _ in range(4)] == ["queued"] * 3 + ["held"]


def test_one_time_codes_from_one_key_are_held_past_its_hourly_limit(api, settings):
    settings.OTP_KEY_HOURLY_LIMIT = 10
    # Numbers of ten different ranges, so that only the key's limit applies.
    statuses = [post(api, to=f"+4474{n:02d}123456", **OTP)["status"] for n in range(11)]
    assert statuses == ["queued"] * 10 + ["held"]
    held = Message.objects.get(status=Status.HELD)
    assert held.last_error_code == "held:velocity:key"
    assert held.last_error_message == (
        "Held for review: 11 one-time codes from API key test-client in the last hour passed the one-time-code "
        "limit of 10."
    )
    # Another key has its own count; ordinary messages from the first are not limited per key by default.
    assert post(client_for("other"), to="+447499123456", **OTP)["status"] == "queued"
    assert post(api, channel="sms", to="+447499123457", body="Receipt")["status"] == "queued"


def test_key_hourly_limit_counts_every_message_of_a_key_when_set(api, settings):
    settings.KEY_HOURLY_LIMIT = 2
    statuses = [post(api, channel="sms", to=f"+4474{n:02d}123456", body="Hi")["status"] for n in range(3)]
    assert statuses == ["queued", "queued", "held"]
    assert Message.objects.get(status=Status.HELD).last_error_message.endswith(
        "passed the limit of 2 per key (KEY_HOURLY_LIMIT)."
    )


def test_counts_slide_out_of_the_hour(api):
    with freeze_time(datetime(2030, 1, 1, 10, 0, 0, tzinfo=UTC)) as clock:
        assert [post(api, to="+447400123456", **OTP)["status"] for _ in range(6)] == ["queued"] * 5 + ["held"]
        clock.move_to(datetime(2030, 1, 1, 10, 59, 0, tzinfo=UTC))
        assert post(api, to="+447400123456", **OTP)["status"] == "held"
        # Half of the 10:00 hour is still within the last hour: 2 of its 5 codes (rounded down) still count.
        clock.move_to(datetime(2030, 1, 1, 11, 30, 0, tzinfo=UTC))
        assert [post(api, to="+447400123456", **OTP)["status"] for _ in range(4)] == ["queued"] * 3 + ["held"]
        # Two hours later, nothing of that hour is left.
        clock.move_to(datetime(2030, 1, 1, 13, 0, 1, tzinfo=UTC))
        assert [post(api, to="+447400123456", **OTP)["status"] for _ in range(6)] == ["queued"] * 5 + ["held"]


def test_a_held_message_does_not_use_up_the_limit(api, settings):
    settings.OTP_RECIPIENT_HOURLY_LIMIT = 0
    # Twenty numbers pass the range's limit; the 21st number is held however often it is tried, while a
    # number already counted in the range may still be sent to.
    for n in range(20):
        post(api, to=f"{PUMPED_RANGE}{n:05d}", **OTP)
    assert post(api, to=f"{PUMPED_RANGE}99999", **OTP)["status"] == "held"
    assert post(api, to=f"{PUMPED_RANGE}99999", **OTP)["status"] == "held"
    assert post(api, to=f"{PUMPED_RANGE}00003", **OTP)["status"] == "queued"


def test_a_batch_reports_the_items_it_held(api):
    items = [{"to": f"{PUMPED_RANGE}{n:05d}"} for n in range(25)]
    response = api.post("/api/v1/messages/batch/", {"defaults": OTP, "messages": items}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["accepted"], body["rejected"], body["held"]) == (25, 0, 5)
    assert all("status" not in result for result in body["results"][:20])
    assert [result["status"] for result in body["results"][20:]] == ["held"] * 5
    assert body["results"][20]["reason"] == (
        "Held for review: 21 distinct numbers in +4474001 in the last hour passed the one-time-code limit of 20."
    )
    stored = Message.objects.get(pk=body["results"][24]["id"])
    assert (stored.status, stored.purpose, stored.job_id) == ("held", "otp", "")
    event = stored.events.get()
    assert (event.to_status, event.code) == ("held", "held:velocity:prefix")
    assert event.detail.endswith(stored.last_error_message)
    # A single message afterwards sees the batch's count.
    assert post(api, to=f"{PUMPED_RANGE}99999", **OTP)["status"] == "held"


def test_a_one_time_code_must_be_transactional(api):
    response = api.post("/api/v1/messages/", {**OTP, "to": "+447400123456", "category": "marketing"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"purpose": ["A one-time code (purpose 'otp') is sent with category 'transactional'."]}
    unknown = api.post("/api/v1/messages/", {**OTP, "to": "+447400123456", "purpose": "login"}, format="json")
    assert unknown.status_code == 400
    assert list(unknown.json()) == ["purpose"]
    batch = api.post(
        "/api/v1/messages/batch/",
        {"messages": [{**OTP, "to": "+447400123456", "category": "marketing"}]},
        format="json",
    )
    assert batch.json()["results"][0]["errors"] == {
        "purpose": ["A one-time code (purpose 'otp') is sent with category 'transactional'."]
    }
    assert not Message.objects.exists()


def test_the_api_shows_a_messages_purpose(api):
    created = post(api, to="+447400123456", **OTP)
    assert created["purpose"] == "otp"
    assert api.get(f"/api/v1/messages/{created['id']}/").json()["purpose"] == "otp"
    assert post(api, channel="sms", to="+447400123456", body="Hi")["purpose"] == ""


# --- Redis away ----------------------------------------------------------------------------------------------


@pytest.fixture
def redis_away(settings):
    """Redis at an address nobody listens on (what the guard reads; the queues keep theirs)."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"


def test_without_redis_one_time_codes_are_held_and_other_messages_go(api, settings, redis_away, caplog):
    held = post(api, to="+447400123456", **OTP)
    assert held["status"] == "held"
    assert held["last_error_code"] == "held:velocity:unchecked"
    assert held["last_error_message"] == (
        "Held for review: the velocity limits could not be checked (Redis unreachable), and one-time codes are not "
        "sent unchecked."
    )
    settings.RECIPIENT_HOURLY_LIMIT = 3
    assert post(api, channel="sms", to="+447400123456", body="Receipt")["status"] == "queued"
    assert "Velocity limits not checked, Redis unreachable" in caplog.text


def test_with_every_limit_off_an_ordinary_message_never_asks_redis(api, settings, redis_away, caplog):
    settings.OTP_RECIPIENT_HOURLY_LIMIT = settings.OTP_PREFIX_DISTINCT_PER_HOUR = settings.OTP_KEY_HOURLY_LIMIT = 0
    assert post(api, channel="sms", to="+447400123456", body="Hi")["status"] == "queued"
    assert post(api, to="+447400123456", **OTP)["status"] == "queued"  # every one-time-code limit off as well
    assert "Velocity limits not checked" not in caplog.text


# --- The other entry points --------------------------------------------------------------------------------


def send_bulk(*args, **options):
    out = io.StringIO()
    try:
        call_command("send_bulk", *args, stdout=out, no_progress=True, processes=1, **options)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def test_send_bulk_reports_the_rows_it_held_by_line(tmp_path):
    rows = "".join(f"{PUMPED_RANGE}{n:05d},otp,{n}\n" for n in range(23))
    path = tmp_path / "codes.csv"
    path.write_text("to,purpose,code\n" + rows + "+447400123456,,x\n", encoding="utf-8")
    out, error = send_bulk(csv=str(path), channel="sms", body="Code {{ code }}", category="transactional")
    assert error is None, out
    # Lines 2 to 21 are the range's first 20 numbers; 22 to 24 are held, each counted as the 21st (held rows are
    # not counted); line 25 is an ordinary message.
    held = "Held for review: 21 distinct numbers in +4474001 in the last hour passed the one-time-code limit of 20."
    assert [line for line in out.splitlines() if line.startswith("Line")] == [f"Line {n}: {held}" for n in (22, 23, 24)]
    assert "24 row(s): 24 were accepted (21 queued, 0 scheduled)" in out
    assert " 3 held for review by the velocity limits." in out
    assert Message.objects.filter(status=Status.HELD, purpose="otp").count() == 3
    assert Message.objects.get(recipient="+447400123456").purpose == ""  # a blank cell: an ordinary message


def test_send_bulk_refuses_a_one_time_code_row_that_is_not_transactional(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("to,purpose\n+447400123456,otp\n+447400123457,\n", encoding="utf-8")
    out, error = send_bulk(csv=str(path), channel="sms", body="Code 1")
    assert "Line 2: purpose: A one-time code (purpose 'otp') is sent with category 'transactional'." in out
    assert error.startswith("1 row(s) rejected.")
    assert Message.objects.get().recipient == "+447400123457"


def test_messages_stored_in_bulk_without_a_key_count_per_recipient_and_prefix(settings):
    # The path of campaigns' fan-out: no API key, so no per-key count.
    settings.RECIPIENT_HOURLY_LIMIT = 2
    settings.PREFIX_DISTINCT_PER_HOUR = 3
    numbers = ["+447499123456"] * 3 + [f"{PUMPED_RANGE}{n:05d}" for n in range(4)]
    items = [message_request_validate(channel="sms", to=number, body="News") for number in numbers]
    result = messages_create_many(items=iter(items), chunk_size=4, collect_ids=True)
    assert (result.created, result.queued, result.held) == (7, 5, 2)
    statuses = dict(Message.objects.values_list("pk", "last_error_code"))
    assert [statuses[pk] for pk in result.ids] == [
        "",
        "",
        "held:velocity:recipient",
        "",
        "",
        "",
        "held:velocity:prefix",
    ]


def test_the_compose_page_takes_a_purpose_and_says_when_it_held_the_message(client, admin_user):
    client.force_login(admin_user)
    data = {"channel": "sms", "priority": "default", "context": "{}", "body": "Code 1", "_send": "Send"}
    data |= {"category": "transactional", "purpose": "otp", "to": "+447400123456"}
    for _ in range(5):
        assert client.post("/admin/deliveries/message/compose/", data).status_code == 302
    response = client.post("/admin/deliveries/message/compose/", data, follow=True)
    held = Message.objects.order_by("pk").last()
    assert (held.status, held.purpose) == ("held", "otp")
    notes = " ".join(response.content.decode().split('<ul class="messagelist">')[1].split("</ul>")[0].split())
    assert f"Message #{held.pk} to +447400123456 held. Held for review: 6 one-time codes to +447400123456" in notes
    page = client.get(f"/admin/deliveries/message/{held.pk}/change/").content.decode()
    assert "One-time code" in page
    refused = client.post("/admin/deliveries/message/compose/", {**data, "category": "marketing"})
    assert refused.context["form"].errors["purpose"] == [
        "A one-time code (purpose 'otp') is sent with category 'transactional'."
    ]
