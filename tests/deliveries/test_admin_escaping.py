"""Hostile content in messages, their events, provider errors and inbound texts is shown escaped on every admin page
(issue 20's stored XSS: content written with an API key or by a provider runs as script in a superuser's browser)."""

import pytest

from deliveries.models import InboundMessage, Message, MessageEvent, Status
from tests.factories import MessageFactory, TemplateFactory
from tests.support import HOSTILE, assert_shown_only_escaped

pytestmark = pytest.mark.django_db

COMPOSE = "/admin/deliveries/message/compose/"


def test_a_message_posted_with_an_api_key_is_shown_escaped_to_a_superuser(api, admin_client):
    response = api.post(
        "/api/v1/messages/",
        {"channel": "email", "to": "ada@example.com", "subject": HOSTILE, "body": HOSTILE, "html_body": HOSTILE},
        format="json",
    )
    assert response.status_code == 201, response.json()
    message = Message.objects.get()
    assert_shown_only_escaped(admin_client.get(f"/admin/deliveries/message/{message.pk}/change/").content.decode())
    assert_shown_only_escaped(admin_client.get("/admin/deliveries/message/").content.decode())


def test_a_providers_error_text_and_event_details_are_shown_escaped(admin_client):
    message = MessageFactory(
        status=Status.FAILED, body=HOSTILE, last_error_code=HOSTILE[:50], last_error_message=HOSTILE
    )
    MessageEvent.objects.create(message=message, kind=MessageEvent.Kind.ERROR, code=HOSTILE[:50], detail=HOSTILE)
    page = admin_client.get(f"/admin/deliveries/message/{message.pk}/change/").content.decode()
    assert_shown_only_escaped(page, times=4)  # the body, the last error, its code, the event's detail and code


def test_an_inbound_message_text_is_shown_escaped(admin_client):
    inbound = InboundMessage.objects.create(
        channel="sms", sender="+14155550100", body=HOSTILE, provider="twilio", provider_message_id="SM1"
    )
    assert_shown_only_escaped(
        admin_client.get(f"/admin/deliveries/inboundmessage/{inbound.pk}/change/").content.decode()
    )
    assert_shown_only_escaped(admin_client.get("/admin/deliveries/inboundmessage/").content.decode())


def test_the_compose_preview_shows_a_typed_body_escaped_and_html_only_in_a_sandboxed_frame(admin_client):
    response = admin_client.post(
        COMPOSE,
        {
            "channel": "email",
            "to": "ada@example.com",
            "subject": HOSTILE,
            "body": HOSTILE,
            "html_body": HOSTILE,
            "priority": "default",
            "_preview": "Preview",
        },
    )
    page = response.content.decode()
    assert_shown_only_escaped(page, times=4)  # the form's fields, the preview's subject and body
    # The frame gets the HTML as HTML (a frame that may run no script), escaped once as the attribute's value.
    assert 'sandbox="" srcdoc="&lt;img src=x onerror=alert(1)&gt;&quot;&gt;&lt;script&gt;' in page
    assert not Message.objects.exists()


def test_the_compose_preview_of_a_template_shows_hostile_context_values_escaped(admin_client):
    template = TemplateFactory(slug="hello", body="Hello {{ name }}", variables={"name": None})
    response = admin_client.post(
        COMPOSE,
        {
            "channel": "sms",
            "to": "+14155550100",
            "template": str(template.pk),
            "context": f'{{"name": "{HOSTILE.replace(chr(34), chr(92) + chr(34))}"}}',
            "priority": "default",
            "_preview": "Preview",
        },
    )
    page = response.content.decode()
    assert "Hello &lt;img src=x onerror=alert(1)&gt;&quot;&gt;&lt;script&gt;" in page
    assert_shown_only_escaped(page)


def test_the_compose_preview_counts_the_segments_of_an_sms(admin_client):
    response = admin_client.post(
        COMPOSE,
        {"channel": "sms", "to": "+14155550100", "body": "x" * 161, "priority": "default", "_preview": "Preview"},
    )
    assert "GSM-7 · 161 characters · <strong>2 segments</strong> (153 per segment)" in response.content.decode()
