from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from content.models import MessageTemplate
from deliveries.models import Message, MessageEvent, Status
from deliveries.services.api_keys import api_key_revoke

pytestmark = pytest.mark.django_db

URL = "/api/v1/messages/"


def sms(**overrides):
    return {"channel": "sms", "to": "+14155550100", "body": "Your code is 1234", **overrides}


@pytest.fixture
def welcome_template(db):
    return MessageTemplate.objects.create(
        name="Welcome",
        slug="welcome",
        channel="email",
        subject="Hi {{ name }}",
        body="Hello {{ name }}!",
        html_body="<p>Hello {{ name }}!</p>",
    )


def test_request_without_a_key_is_refused_with_401(db):
    response = APIClient().post(URL, sms(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_request_with_a_wrong_key_is_refused_with_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer tid_deadbeef_not-the-secret")
    assert client.post(URL, sms(), format="json").status_code == 401


def test_revoked_key_is_refused_with_401(api, api_key):
    api_key_revoke(api_key=api_key)
    assert api.post(URL, sms(), format="json").status_code == 401
    assert Message.objects.count() == 0


def test_keys_are_stored_hashed(api_key):
    api_key.refresh_from_db()
    assert api_key.raw not in (api_key.key_hash, api_key.prefix)
    assert len(api_key.key_hash) == 64


def test_posting_an_sms_stores_it_queued_with_its_creation_event(api, api_key):
    response = api.post(URL, sms(to="+1 (415) 555-0100", metadata={"order": 42}), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "queued"
    assert data["to"] == "+14155550100"
    message = Message.objects.get(pk=data["id"])
    assert message.api_key == api_key
    assert message.metadata == {"order": 42}
    assert list(message.events.values_list("to_status", flat=True)) == ["queued"]


def test_posting_with_a_future_send_at_schedules_the_message(api):
    send_at = timezone.now() + timedelta(hours=1)
    response = api.post(URL, sms(send_at=send_at.isoformat()), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "scheduled"


def test_email_from_a_template_is_rendered_with_the_context(api, welcome_template):
    response = api.post(
        URL,
        {"channel": "email", "to": "Ada@Example.COM", "template": "welcome", "context": {"name": "Ada & Co"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert message.recipient == "Ada@example.com"
    assert message.subject == "Hi Ada & Co"
    assert message.body == "Hello Ada & Co!"
    assert message.html_body == "<p>Hello Ada &amp; Co!</p>"


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        (sms(channel="fax"), "channel", "not a valid choice"),
        (sms(to="555-0100"), "to", "not a phone number"),
        (sms(to="+1415555"), "to", "not a valid phone number"),
        ({"channel": "email", "to": "not-an-email", "subject": "Hi", "body": "x"}, "to", "not a valid email"),
        (sms(body=""), "body", "Give a body"),
        ({"channel": "sms", "to": "+14155550100"}, "body", "Give a body"),
        (sms(body="", template="no-such-template"), "template", "No template with slug 'no-such-template'"),
        (sms(send_at="next tuesday"), "send_at", "Datetime has wrong format"),
        (sms(priority="urgent"), "priority", "not a valid choice"),
        ({"channel": "email", "to": "a@example.com", "body": "x"}, "subject", "needs a subject"),
    ],
)
def test_bad_input_is_answered_400_with_a_field_error_and_nothing_stored(api, payload, field, fragment):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert fragment in " ".join(errors[field])
    assert Message.objects.count() == 0
    assert MessageEvent.objects.count() == 0


def test_template_for_another_channel_is_refused(api, welcome_template):
    response = api.post(URL, sms(body="", template="welcome"), format="json")
    assert response.status_code == 400
    assert "is for email, not sms" in response.json()["template"][0]


def test_template_missing_a_variable_is_refused_with_its_name(api, welcome_template):
    response = api.post(URL, {"channel": "email", "to": "a@example.com", "template": "welcome"}, format="json")
    assert response.status_code == 400
    assert "'name'" in response.json()["template"][0]
    assert Message.objects.count() == 0


def test_template_with_a_syntax_error_is_refused(api):
    MessageTemplate.objects.create(name="Broken", slug="broken", channel="sms", body="Hi {% if %}")
    response = api.post(URL, sms(body="", template="broken"), format="json")
    assert response.status_code == 400
    assert "syntax" in response.json()["template"][0].lower()


def test_message_detail_includes_its_timeline(api):
    message_id = api.post(URL, sms(), format="json").json()["id"]
    response = api.get(f"{URL}{message_id}/")
    assert response.status_code == 200
    assert [e["to_status"] for e in response.json()["events"]] == ["queued"]


def test_list_filters_by_status_and_channel_and_creation_time(api):
    api.post(URL, sms(), format="json")
    api.post(URL, sms(send_at=(timezone.now() + timedelta(days=1)).isoformat()), format="json")
    api.post(URL, {"channel": "email", "to": "a@example.com", "subject": "s", "body": "b"}, format="json")
    assert api.get(URL).json()["count"] == 3
    assert api.get(URL, {"status": "scheduled"}).json()["count"] == 1
    assert api.get(URL, {"channel": "email"}).json()["count"] == 1
    future = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert api.get(URL, {"created_after": future}).json()["count"] == 0
    assert api.get(URL, {"created_before": future}).json()["count"] == 3


def test_cancelling_a_scheduled_message(api):
    message_id = api.post(URL, sms(send_at=(timezone.now() + timedelta(hours=1)).isoformat()), format="json").json()[
        "id"
    ]
    response = api.post(f"{URL}{message_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Message.objects.get(pk=message_id).cancelled_at is not None


def test_cancelling_a_sent_message_is_a_409_conflict(api):
    message_id = api.post(URL, sms(), format="json").json()["id"]
    Message.objects.filter(pk=message_id).update(status=Status.SENT)
    response = api.post(f"{URL}{message_id}/cancel/")
    assert response.status_code == 409
    assert "only scheduled or queued" in response.json()["detail"]
    assert Message.objects.get(pk=message_id).status == Status.SENT


def test_a_message_is_marketing_unless_marked_transactional(api):
    marketing = api.post(URL, sms(), format="json").json()
    code = api.post(URL, sms(category="transactional"), format="json").json()
    assert (marketing["category"], code["category"]) == ("marketing", "transactional")
    assert api.get(URL, {"category": "transactional"}).json()["count"] == 1


def test_an_mms_with_media_and_a_per_message_sender(api):
    response = api.post(
        URL,
        sms(body="", media_urls=["https://example.com/cat.jpg"], sender="MG" + "a" * 32),
        format="json",
    )
    assert response.status_code == 201, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.media_urls, message.sender, message.body) == (["https://example.com/cat.jpg"], "MG" + "a" * 32, "")


def test_a_whatsapp_template_message_and_a_messenger_message(api):
    whatsapp = api.post(
        URL,
        {
            "channel": "whatsapp",
            "to": "whatsapp:+1 415 555 0100",
            "content_sid": "HX" + "c" * 32,
            "content_variables": {"1": "Ada"},
        },
        format="json",
    )
    messenger = api.post(URL, {"channel": "messenger", "to": "1234567890", "body": "Hi"}, format="json")
    assert (whatsapp.status_code, messenger.status_code) == (201, 201), (whatsapp.json(), messenger.json())
    assert whatsapp.json()["to"] == "+14155550100"
    assert whatsapp.json()["content_variables"] == {"1": "Ada"}
    assert messenger.json()["channel"] == "messenger"


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        (sms(category="newsletter"), "category", "not a valid choice"),
        (sms(media_urls=["not a url"]), "media_urls", "valid URL"),
        (sms(media_urls=["ftp://example.com/a.png"]), "media_urls", "public http(s) URL"),
        (sms(media_urls=[f"https://example.com/{n}.png" for n in range(11)]), "media_urls", "At most 10"),
        (
            {"channel": "email", "to": "a@example.com", "subject": "s", "body": "b", "media_urls": ["https://x.io/a"]},
            "media_urls",
            "not email",
        ),
        (sms(content_sid="HX123"), "content_sid", "HX followed by 32 hex digits"),
        (sms(content_variables={"1": "x"}), "content_variables", "need a content_sid"),
        (sms(sender="not a number!"), "sender", "not a phone number"),
        ({"channel": "messenger", "to": "1234", "body": "x", "sender": "me"}, "sender", "sent by the page"),
        ({"channel": "messenger", "to": "ada", "body": "x"}, "to", "not a Messenger PSID"),
        (
            {"channel": "email", "to": "a@example.com", "subject": "s", "body": "b", "sender": "nobody"},
            "sender",
            "valid",
        ),
    ],
)
def test_bad_feedback_fields_are_answered_400(api, payload, field, fragment):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    assert fragment in str(response.json()[field]), response.json()


def test_an_alphanumeric_sender_id_is_accepted_for_sms(api):
    response = api.post(URL, sms(sender="Tidings"), format="json")
    assert response.status_code == 201
    assert response.json()["sender"] == "Tidings"


def test_message_detail_shows_opens_clicks_and_read_time(api):
    message_id = api.post(URL, sms(), format="json").json()["id"]
    Message.objects.filter(pk=message_id).update(opens_count=3, clicks_count=1)
    data = api.get(f"{URL}{message_id}/").json()
    assert (data["opens_count"], data["clicks_count"], data["read_at"]) == (3, 1, None)


def test_the_summary_counts_outcomes_and_engagement_for_the_filtered_messages(api):
    from tests.factories import MessageFactory

    MessageFactory(channel="email", recipient="a@example.com", status=Status.DELIVERED, opens_count=3, clicks_count=1)
    MessageFactory(channel="email", recipient="b@example.com", status=Status.DELIVERED, opens_count=1)
    MessageFactory(channel="email", recipient="c@example.com", status=Status.UNDELIVERED)
    MessageFactory(channel="email", recipient="d@example.com", status=Status.SUPPRESSED)
    MessageFactory(channel="sms", status=Status.DELIVERED)

    email = api.get(f"{URL}summary/", {"channel": "email"}).json()
    everything = api.get(f"{URL}summary/").json()

    assert email["total"] == 4
    assert (email["by_status"]["delivered"], email["by_status"]["suppressed"]) == (2, 1)
    assert (email["opened"], email["clicked"], email["opens"], email["clicks"]) == (2, 1, 4, 1)
    assert (email["delivery_rate"], email["open_rate"], email["click_rate"]) == (0.6667, 1.0, 0.5)
    assert everything["total"] == 5 and everything["delivery_rate"] == 0.75


def test_the_summary_of_nothing_has_no_rates(api):
    assert api.get(f"{URL}summary/").json()["delivery_rate"] is None


def test_a_message_can_depend_on_another_and_shows_it(api):
    parent = api.post(URL, sms(), format="json").json()
    response = api.post(
        URL,
        sms(body="Follow-up", depends_on=parent["id"], depends_on_condition="sent", depends_on_delay=600),
        format="json",
    )
    assert response.status_code == 201
    child = response.json()
    assert child["status"] == "waiting"
    assert child["depends_on"] == parent["id"]
    assert child["depends_on_condition"] == "sent"
    assert child["depends_on_delay"] == 600
    assert child["depends_on_window"] is None
    detail = api.get(f"{URL}{child['id']}/").json()
    assert f"waiting for message #{parent['id']} sent, then 10 minutes" in detail["events"][0]["detail"]
    assert api.post(f"{URL}{child['id']}/cancel/").json()["status"] == "cancelled"


def test_a_dependency_on_a_missing_message_or_engagement_of_an_sms_is_refused(api):
    parent = api.post(URL, sms(), format="json").json()
    response = api.post(URL, sms(depends_on=999999), format="json")
    assert response.status_code == 400
    assert response.json() == {"depends_on": ["No message with id 999999."]}
    response = api.post(URL, sms(depends_on=parent["id"], depends_on_condition="not_clicked"), format="json")
    assert response.status_code == 400
    assert "only reported for email" in response.json()["depends_on_condition"][0]


def test_a_message_to_a_country_sms_may_not_reach_is_refused_with_a_400_naming_it(api, settings):
    settings.SMS_ALLOWED_COUNTRIES = ["GB", "US"]
    response = api.post(URL, sms(to="+5511987654321"), format="json")
    assert response.status_code == 400
    assert response.json() == {"to": ["Sending sms to BR is not allowed (SMS_ALLOWED_COUNTRIES: GB, US)."]}
    # MMS is SMS with media: the same list.
    response = api.post(URL, sms(to="+5511987654321", media_urls=["https://example.com/a.jpg"]), format="json")
    assert response.status_code == 400 and "BR" in response.json()["to"][0]
    satellite = api.post(URL, sms(to="+881612345678"), format="json")
    assert satellite.status_code == 400 and "its country cannot be told" in satellite.json()["to"][0]
    assert not Message.objects.exists()
    assert api.post(URL, sms(to="+447400123456"), format="json").status_code == 201


def test_a_key_with_its_own_countries_may_send_only_there(api, api_key):
    api_key.allowed_countries = ["GB"]
    api_key.save()
    response = api.post(URL, sms(to="+14155550100"), format="json")
    assert response.status_code == 400
    assert response.json() == {"to": ["Sending sms to US is not allowed (this API key's countries: GB)."]}
    assert not Message.objects.exists()
    assert api.post(URL, sms(to="+447400123456"), format="json").status_code == 201
    email = {"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"}
    assert api.post(URL, email, format="json").status_code == 201  # email has no country
