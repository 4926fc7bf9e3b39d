"""The admin's compose page: fields by channel (refused by the server when filled for another channel), the send
time read in UTC to the second, the preview's figures, and a warning (never a refusal) for a suppressed recipient."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from deliveries.models import Message, Status, Suppression
from tests.factories import TemplateFactory
from tests.support import HOSTILE, assert_shown_only_escaped

pytestmark = pytest.mark.django_db

COMPOSE = "/admin/deliveries/message/compose/"


@pytest.fixture
def composer(client):
    """A staff member who may compose and view messages, and nothing else."""
    user = User.objects.create_user("composer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_message", "view_message"]))
    client.force_login(user)
    return user


def post(client, **fields):
    data = {"channel": "sms", "to": "+14155550100", "priority": "default", "context": "{}", **fields}
    return client.post(COMPOSE, data)


def text(html: str) -> str:
    """The page's text as a reader sees it: runs of white space as one space."""
    return " ".join(html.split())


def field_errors(response) -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


# --- Fields by channel ---------------------------------------------------------------------------------------


def test_fields_of_another_channel_are_refused_by_name_rather_than_dropped(client, composer):
    response = post(client, body="Hi", subject="Hello", html_body="<p>Hi</p>", _send="Send")
    assert field_errors(response) == {
        "subject": ["SMS messages have no subject: leave it empty."],
        "html_body": ["SMS messages have no HTML part: leave it empty."],
    }
    response = post(
        client, channel="email", to="ada@example.com", subject="Hi", body="Hi", media_urls="https://e.com/a.jpg"
    )
    assert field_errors(response) == {"media_urls": ["Email messages have no media: leave it empty."]}
    response = post(client, channel="messenger", to="1234567890", body="Hi", media_urls="https://e.com/a.jpg")
    assert field_errors(response) == {"media_urls": ["Messenger messages have no media: leave it empty."]}
    assert not Message.objects.exists()


def test_each_channel_takes_its_own_fields(client, composer):
    response = post(
        client, channel="email", to="ada@example.com", subject="Hi", body="Hi", html_body="<p>Hi</p>", _send="1"
    )
    assert response.status_code == 302, field_errors(response)
    response = post(client, channel="whatsapp", body="Hi", media_urls="https://example.com/a.jpg", _send="1")
    assert response.status_code == 302, field_errors(response)
    assert sorted(Message.objects.values_list("channel", "subject")) == [("email", "Hi"), ("whatsapp", "")]


def test_without_script_every_group_shows_under_its_title_body_first(client, composer):
    page = client.get(COMPOSE).content.decode()
    groups = re.findall(r'<fieldset class="module aligned" (?:data-channels="([^"]*)")?>\s*<h2>([^<]*)</h2>', page)
    assert groups == [
        ("", "Message"),
        ("email", "Email only"),
        ("sms whatsapp", "SMS and WhatsApp only"),
        ("", "Or render a template instead of the body"),
        ("", "When and how"),
    ]
    order = [page.index(f'name="{name}"') for name in ("channel", "to", "body", "subject", "template", "context")]
    assert order == sorted(order)
    assert "hidden" not in page.split('data-channels="email"')[1].split(">")[0]  # hidden only by the script


def test_template_choices_carry_their_channel_for_the_script_to_filter(client, composer):
    sms = TemplateFactory(slug="sms-hello", channel="sms", body="Hi")
    email = TemplateFactory(slug="email-hello", channel="email", subject="Hi", body="Hi")
    page = client.get(COMPOSE).content.decode()
    assert f'value="{sms.pk}" data-channel="sms"' in page
    assert f'value="{email.pk}" data-channel="email"' in page


# --- Send at -------------------------------------------------------------------------------------------------


def test_send_at_is_read_as_utc_to_the_second_whatever_the_servers_time_zone(client, composer, settings):
    settings.TIME_ZONE = "America/New_York"
    when = (timezone.now() + timedelta(days=1)).astimezone(UTC).replace(microsecond=0)
    response = post(client, body="Tomorrow", send_at=when.strftime("%Y-%m-%dT%H:%M:%S"), _send="Send")
    assert response.status_code == 302, field_errors(response)
    message = Message.objects.get()
    assert (message.status, message.send_at) == (Status.SCHEDULED, when)


def test_the_page_says_send_at_is_utc_and_what_time_it_is(client, composer):
    page = client.get(COMPOSE).content.decode()
    assert "Send at (UTC):" in page
    assert 'step="1"' in page  # seconds
    assert re.search(r"Now: <time [^>]*>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>", page)


# --- Preview -------------------------------------------------------------------------------------------------


def test_the_preview_shows_the_recipient_send_time_in_utc_and_the_sms_figures(client, composer):
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2, hours=3, minutes=30)
    response = post(
        client, to="+1 415 555 0100", body="✓" * 71, send_at=when.strftime("%Y-%m-%dT%H:%M:%S"), _preview="1"
    )
    page = response.content.decode()
    preview = page[page.index('id="compose-preview"') : page.index('id="compose-form"')]
    assert "<dt>To</dt><dd>+14155550100 by SMS</dd>" in preview
    assert f"at {when:%Y-%m-%d %H:%M:%S} UTC (2\xa0days, 3\xa0hours from now)" in preview
    assert "UCS-2 · 71 characters · <strong>2 segments</strong> (67 per segment)" in preview
    assert not Message.objects.exists()


def test_the_preview_of_a_message_sent_now_says_so_and_shows_no_sms_figures_for_email(client, composer):
    response = post(client, channel="email", to="Ada@Example.com", subject="Hi", body="Hello", _preview="1")
    page = response.content.decode()
    assert "<dt>To</dt><dd>Ada@example.com by Email</dd>" in page
    assert "now, as soon as you press Send" in page
    assert "segment" not in page.split('id="compose-preview"')[1].split("</dl>")[0]


# --- A suppressed recipient ------------------------------------------------------------------------------------


def suppress(address="+14155550100", channel="sms", reason=Suppression.Reason.OPT_OUT, source="STOP reply"):
    return Suppression.objects.create(channel=channel, address=address, reason=reason, source=source)


def test_a_suppressed_recipient_is_warned_of_in_the_preview_with_the_reason_and_a_link(client, composer):
    composer.user_permissions.add(Permission.objects.get(codename="view_suppression"))
    entry = suppress()
    page = post(client, to="+1 (415) 555-0100", body="Hi", _preview="1").content.decode()
    warning = text(page.split('id="suppression-warning"')[1].split("</div>")[0])
    assert "+14155550100 is on the SMS suppression list:" in warning
    assert f'<a href="/admin/deliveries/suppression/{entry.pk}/change/">opted out</a> (STOP reply)' in warning
    assert "This message will not be sent: it will be marked suppressed." in warning


def test_sending_to_a_suppressed_recipient_is_not_refused_and_warns_after_sending(client, composer):
    suppress(reason=Suppression.Reason.HARD_BOUNCE, source="twilio")
    response = post(client, body="Hi", _send="Send")
    assert response.status_code == 302
    assert Message.objects.count() == 1
    page = client.get(response["Location"]).content.decode()
    notes = text(page.split('<ul class="messagelist">')[1].split("</ul>")[0])
    assert "+14155550100 is on the SMS suppression list: hard bounce (twilio)" in notes
    assert "This message will not be sent" in notes
    assert "/admin/deliveries/suppression/" not in notes  # no link for someone who may not open the entry


def test_a_transactional_message_to_an_opted_out_recipient_is_said_to_still_go_out(client, composer):
    suppress()
    page = text(post(client, body="Your code: 1234", category="transactional", _preview="1").content.decode())
    assert "Opt-outs stop marketing only: this transactional message still goes out." in page
    assert "will not be sent" not in page


def test_no_warning_for_a_recipient_not_on_the_list(client, composer):
    suppress(address="+14155550199")
    page = post(client, body="Hi", _preview="1").content.decode()
    assert 'id="suppression-warning"' not in page


def test_the_warning_shows_the_entrys_source_escaped(client, composer):
    suppress(channel="email", address="ada@example.com", source=HOSTILE)
    page = post(client, channel="email", to="ada@example.com", subject="Hi", body="Hi", _preview="1").content.decode()
    assert_shown_only_escaped(page.split('id="suppression-warning"')[1].split("</div>")[0])


def test_a_recipient_in_a_country_not_allowed_is_a_form_error_naming_the_country(client, composer, settings):
    settings.SMS_ALLOWED_COUNTRIES = ["GB"]
    response = post(client, to="+14155550100", body="Hi", _send="Send")
    assert response.status_code == 200
    assert field_errors(response) == {"to": ["Sending sms to US is not allowed (SMS_ALLOWED_COUNTRIES: GB)."]}
    assert not Message.objects.exists()
