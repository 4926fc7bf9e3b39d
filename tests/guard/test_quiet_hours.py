"""Recipient-local quiet hours for single messages (issue #24, "Fraud"): a message due inside them is scheduled for
their end, with the reason on its timeline, on every path that creates messages."""

import io
import zoneinfo
from datetime import UTC, datetime, time

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from freezegun import freeze_time
from rest_framework.test import APIClient

from deliveries.models import Message, MessageEvent, Status
from deliveries.services.api_keys import api_key_create
from guard.checks import quiet_hours_check
from guard.services.quiet_hours import (
    QuietHours,
    in_quiet_hours,
    quiet_hours_deferral,
    quiet_hours_parse,
    recipient_zones,
)

pytestmark = pytest.mark.django_db(transaction=True)

UK_MOBILE = "+447911123456"  # phonenumbers: Guernsey, the Isle of Man, Jersey and London, all on London time
NIGHT_IN_LONDON = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # 23:00 BST
NOON_IN_LONDON = datetime(2026, 6, 1, 11, 0, tzinfo=UTC)  # 12:00 BST
EIGHT_IN_LONDON = datetime(2026, 6, 2, 7, 0, tzinfo=UTC)  # 08:00 BST the next morning
REASON = "Deferred to 08:00 Europe/London: quiet hours 21:00–08:00 for the recipient's local time."
NIGHT = QuietHours(start=time(21, 0), end=time(8, 0))


@pytest.fixture
def quiet(settings):
    settings.QUIET_HOURS = "21:00-08:00"
    return settings


def created_event(message_id: int) -> MessageEvent:
    return MessageEvent.objects.get(message_id=message_id)


def post_sms(api, **fields):
    return api.post("/api/v1/messages/", {"channel": "sms", "to": UK_MOBILE, "body": "Sale!", **fields}, format="json")


def test_a_marketing_sms_at_23_00_in_london_is_deferred_to_08_00_london_with_the_reason(api, quiet):
    with freeze_time(NIGHT_IN_LONDON):
        response = post_sms(api)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == Status.SCHEDULED
    assert datetime.fromisoformat(body["send_at"]) == EIGHT_IN_LONDON
    message = Message.objects.get(pk=body["id"])
    assert (message.status, message.send_at, message.job_id) == (Status.SCHEDULED, EIGHT_IN_LONDON, "")
    assert created_event(message.pk).detail.endswith(f"for 2026-06-02 07:00:00 UTC. {REASON}")
    assert REASON in str(api.get(f"/api/v1/messages/{message.pk}/").json()["events"])


def test_the_same_sms_at_noon_in_london_is_sent_now(api, quiet):
    with freeze_time(NOON_IN_LONDON):
        response = post_sms(api)
    assert (response.json()["status"], response.json()["send_at"]) == (Status.QUEUED, None)
    assert "Deferred" not in created_event(response.json()["id"]).detail


def test_a_send_time_asked_for_inside_the_quiet_hours_moves_to_their_end(api, quiet):
    with freeze_time(NOON_IN_LONDON):
        response = post_sms(api, send_at="2026-06-01T23:30:00+01:00")
    assert datetime.fromisoformat(response.json()["send_at"]) == EIGHT_IN_LONDON


def test_without_quiet_hours_the_default_nothing_is_deferred(api):
    with freeze_time(NIGHT_IN_LONDON):
        response = post_sms(api)
    assert response.json()["status"] == Status.QUEUED


def test_a_transactional_message_is_not_deferred_unless_quiet_hours_transactional_is_set(api, quiet):
    with freeze_time(NIGHT_IN_LONDON):
        code = post_sms(api, body="Your code is 123456", category="transactional")
    assert code.json()["status"] == Status.QUEUED
    quiet.QUIET_HOURS_TRANSACTIONAL = "22:30-07:00"
    with freeze_time(NIGHT_IN_LONDON):
        code = post_sms(api, body="Your code is 123456", category="transactional")
    assert code.json()["status"] == Status.SCHEDULED
    assert datetime.fromisoformat(code.json()["send_at"]) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 07:00 BST
    assert "quiet hours 22:30–07:00" in created_event(code.json()["id"]).detail


def test_email_recipients_keep_the_default_time_zone(api, quiet):
    quiet.QUIET_HOURS_DEFAULT_TIMEZONE = "America/New_York"
    email = {"channel": "email", "to": "ada@example.com", "subject": "Sale", "body": "Sale!"}
    with freeze_time(NIGHT_IN_LONDON):  # 18:00 in New York
        evening = api.post("/api/v1/messages/", email, format="json")
    assert evening.json()["status"] == Status.QUEUED
    with freeze_time(datetime(2026, 6, 2, 3, 0, tzinfo=UTC)):  # 23:00 in New York
        night = api.post("/api/v1/messages/", email, format="json")
    assert datetime.fromisoformat(night.json()["send_at"]) == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)  # 08:00 EDT
    assert "Deferred to 08:00 America/New_York" in created_event(night.json()["id"]).detail


def test_without_a_default_zone_of_its_own_the_servers_time_zone_is_used(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    assert recipient_zones(channel="email", recipient="ada@example.com") == (zoneinfo.ZoneInfo("Asia/Tokyo"),)
    assert recipient_zones(channel="sms", recipient="+12125550100") == (zoneinfo.ZoneInfo("America/New_York"),)
    # A range phonenumbers cannot place (Ofcom's drama numbers) is in the default zone too.
    assert recipient_zones(channel="sms", recipient="+447700900123") == (zoneinfo.ZoneInfo("Asia/Tokyo"),)


def test_quiet_hours_false_sends_now_for_a_key_that_may_send_transactional_messages(api, quiet):
    with freeze_time(NIGHT_IN_LONDON):
        response = post_sms(api, quiet_hours=False)
    assert (response.json()["status"], response.json()["send_at"]) == (Status.QUEUED, None)


def test_quiet_hours_false_is_refused_to_a_key_without_the_transactional_scope(quiet):
    _, raw = api_key_create(name="marketing", scopes=["messages:send", "messages:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with freeze_time(NIGHT_IN_LONDON):
        refused = post_sms(client, quiet_hours=False)
        allowed = post_sms(client)
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "Sending inside the recipient's quiet hours takes the scope transactional:send."
    }
    assert allowed.json()["status"] == Status.SCHEDULED
    assert Message.objects.count() == 1


@pytest.mark.parametrize("value", ["no", 0, "False", None])
def test_quiet_hours_takes_true_or_false_only(api, quiet, value):
    response = post_sms(api, quiet_hours=value)
    assert response.status_code == 400
    assert list(response.json()) == ["quiet_hours"]
    assert not Message.objects.exists()


def test_a_deadline_before_the_end_of_the_quiet_hours_is_refused_with_the_reason(api, quiet):
    with freeze_time(NIGHT_IN_LONDON):
        response = post_sms(api, expires_at="2026-06-02T06:00:00Z")
        counted_from_the_new_time = post_sms(api, valid_for=600)
    assert response.status_code == 400
    assert REASON in response.json()["expires_at"][0]
    assert datetime.fromisoformat(counted_from_the_new_time.json()["expires_at"]) == datetime(
        2026, 6, 2, 7, 10, tzinfo=UTC
    )


def test_a_batch_defers_each_item_inside_its_own_recipients_quiet_hours(api, quiet):
    with freeze_time(NIGHT_IN_LONDON):  # 23:00 in London, 15:00 in Los Angeles
        response = api.post(
            "/api/v1/messages/batch/",
            {"defaults": {"channel": "sms", "body": "Sale!"}, "messages": [{"to": UK_MOBILE}, {"to": "+14155550101"}]},
            format="json",
        )
    assert response.status_code == 201, response.content
    london, los_angeles = (Message.objects.get(pk=r["id"]) for r in response.json()["results"])
    assert (london.status, london.send_at) == (Status.SCHEDULED, EIGHT_IN_LONDON)
    assert created_event(london.pk).detail == f"Created in bulk by API key test-client. {REASON}"
    assert (los_angeles.status, los_angeles.send_at) == (Status.QUEUED, None)
    assert created_event(los_angeles.pk).detail == "Created in bulk by API key test-client."


def test_send_bulk_defers_the_rows_inside_their_recipients_quiet_hours(tmp_path, quiet):
    path = tmp_path / "people.csv"
    path.write_text(f"to\n{UK_MOBILE}\n+14155550101\n", encoding="utf-8")
    with freeze_time(NIGHT_IN_LONDON):
        call_command("send_bulk", csv=str(path), channel="sms", body="Sale!", stdout=io.StringIO(), no_progress=True)
    london = Message.objects.get(recipient=UK_MOBILE)
    assert (london.status, london.send_at) == (Status.SCHEDULED, EIGHT_IN_LONDON)
    assert created_event(london.pk).detail.endswith(REASON)
    assert Message.objects.get(recipient="+14155550101").status == Status.QUEUED


def test_the_compose_page_says_why_a_message_was_scheduled(client, quiet):
    user = User.objects.create_user("composer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_message", "view_message"]))
    client.force_login(user)
    data = {"channel": "sms", "to": UK_MOBILE, "body": "Sale!", "priority": "default", "context": "{}"}
    with freeze_time(NIGHT_IN_LONDON):
        response = client.post("/admin/deliveries/message/compose/", data, follow=True)
    message = Message.objects.get()
    assert (message.status, message.send_at) == (Status.SCHEDULED, EIGHT_IN_LONDON)
    assert f"Message #{message.pk} to {UK_MOBILE} scheduled. {REASON}" in [str(m) for m in response.context["messages"]]


def test_a_number_in_several_zones_waits_until_it_is_morning_in_all_of_them():
    # A Russian mobile range spans UTC+3 (Moscow; Bucharest, oddly) to UTC+12 (Kamchatka): 05:00 UTC is 08:00 in
    # Moscow and 17:00 in Kamchatka, the first moment no zone of the range is between 21:00 and 08:00.
    zones = recipient_zones(channel="sms", recipient="+79161234567")
    assert len(zones) > 10
    deferral = quiet_hours_deferral(window=NIGHT, moment=NIGHT_IN_LONDON, zones=zones)
    assert deferral is not None
    assert deferral.until == datetime(2026, 6, 2, 5, 0, tzinfo=UTC)
    assert not any(in_quiet_hours(deferral.until, start=NIGHT.start, end=NIGHT.end, zone=zone) for zone in zones)
    # Moscow and Bucharest both wake at 05:00 UTC: the timeline names the one phonenumbers lists last.
    assert deferral.zone.key == "Europe/Moscow"


def test_zones_with_no_common_waking_hour_wait_for_the_latest_end_among_those_asleep():
    # Quiet 18:00-09:00 leaves nine waking hours; London and Auckland are eleven hours apart: never both awake.
    zones = (zoneinfo.ZoneInfo("Europe/London"), zoneinfo.ZoneInfo("Pacific/Auckland"))
    window = QuietHours(start=time(18, 0), end=time(9, 0))
    deferral = quiet_hours_deferral(window=window, moment=NIGHT_IN_LONDON, zones=zones)  # 10:00 in Auckland
    assert deferral is not None
    assert (deferral.until, deferral.zone.key) == (datetime(2026, 6, 2, 8, 0, tzinfo=UTC), "Europe/London")


def test_the_window_is_read_strictly():
    assert quiet_hours_parse("") is None
    assert quiet_hours_parse(" 21:00 – 8:00 ") == NIGHT
    for bad in ("21-8", "25:00-08:00", "21:00", "08:00-08:00"):
        with pytest.raises(ValueError, match="QUIET_HOURS"):
            quiet_hours_parse(bad, name="QUIET_HOURS")


def test_a_bad_setting_is_reported_by_manage_py_check(settings):
    settings.QUIET_HOURS = "9pm-8am"
    settings.QUIET_HOURS_DEFAULT_TIMEZONE = "Mars/Olympus"
    assert [error.msg for error in quiet_hours_check()] == [
        "QUIET_HOURS '9pm-8am' is not a window like 21:00-08:00.",
        "QUIET_HOURS_DEFAULT_TIMEZONE 'Mars/Olympus' is not an IANA time zone.",
    ]
