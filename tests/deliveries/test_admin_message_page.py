"""The message page: its timeline first (refreshed while the message is in flight), Cancel and Retry for those
allowed, no Save button on a read-only page, times to the second, and only the fields that have a value."""

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from deliveries.models import AuditEntry, Message, Status
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/admin/deliveries/message/"


@pytest.fixture
def staff(client):
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_message", "change_message"]))
    client.force_login(user)
    return user


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


def page_of(client, message) -> str:
    response = client.get(f"{LIST}{message.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_read_only_message_page_has_no_save_buttons_even_for_staff_who_may_change(client, staff):
    content = page_of(client, MessageFactory())
    assert 'name="_save"' not in content and 'name="_continue"' not in content
    assert "closelink" in content


def test_cancel_and_retry_buttons_show_only_where_the_status_and_the_permission_allow(client, staff):
    scheduled = MessageFactory(status=Status.SCHEDULED, send_at=timezone.now() + timedelta(hours=1))
    failed = MessageFactory(status=Status.FAILED)
    assert "Cancel this message" not in page_of(client, scheduled)
    grant(staff, "cancel_message", "retry_message")
    assert "Cancel this message" in page_of(client, scheduled)
    assert "Retry this message" not in page_of(client, scheduled)
    assert "Retry this message" in page_of(client, failed)
    assert "Cancel this message" not in page_of(client, failed)


def test_the_cancel_button_cancels_with_a_post_and_records_who(client, staff):
    message = MessageFactory(status=Status.SCHEDULED, send_at=timezone.now() + timedelta(hours=1))
    assert client.post(f"{LIST}{message.pk}/cancel/").status_code == 403
    grant(staff, "cancel_message")
    assert client.get(f"{LIST}{message.pk}/cancel/").status_code == 405
    response = client.post(f"{LIST}{message.pk}/cancel/", follow=True)
    assert Message.objects.get(pk=message.pk).status == Status.CANCELLED
    assert "cancelled: it will not be sent" in response.content.decode()
    assert AuditEntry.objects.get(action=AuditEntry.Action.MESSAGE_CANCELLED).target_id == str(message.pk)
    again = client.post(f"{LIST}{message.pk}/cancel/", follow=True).content.decode()
    assert "was not cancelled: it had already started sending or finished" in again


def test_the_retry_button_queues_a_failed_message_again(client, staff):
    grant(staff, "retry_message")
    message = MessageFactory(status=Status.FAILED)
    client.post(f"{LIST}{message.pk}/retry/")
    assert Message.objects.get(pk=message.pk).status == Status.QUEUED
    assert AuditEntry.objects.filter(action=AuditEntry.Action.MESSAGE_RETRIED).count() == 1


def test_the_timeline_refreshes_while_in_flight_and_stops_once_settled(client, staff):
    in_flight = MessageFactory(status=Status.SENT)
    in_flight.events.create(to_status="sent", from_status="sending", detail="Accepted by Twilio.")
    content = page_of(client, in_flight)
    assert content.index("Timeline") < content.index("field-channel")  # the timeline leads
    assert "message_timeline.js" in content

    state = client.get(f"{LIST}{in_flight.pk}/timeline/").json()
    assert (state["status"], state["settled"]) == ("sent", False)
    assert "Accepted by Twilio." in state["html"]

    Message.objects.filter(pk=in_flight.pk).update(status=Status.DELIVERED)
    assert client.get(f"{LIST}{in_flight.pk}/timeline/").json()["settled"] is True
    assert "message_timeline.js" not in page_of(client, in_flight)


def test_the_timeline_is_for_staff_who_may_see_messages(client):
    message = MessageFactory()
    client.force_login(User.objects.create_user("someone", password="pw", is_staff=True))
    assert client.get(f"{LIST}{message.pk}/timeline/").status_code == 403
    assert client.get(f"{LIST}999999/timeline/").status_code in (403, 404)


def test_times_keep_their_seconds_and_empty_fields_are_left_out(client, staff):
    message = MessageFactory(status=Status.SENT)
    sent_at = timezone.make_aware(datetime(2026, 12, 1, 9, 30, 17))
    Message.objects.filter(pk=message.pk).update(sent_at=sent_at)
    content = page_of(client, message)
    assert timezone.localtime(sent_at).strftime("%Y-%m-%d %H:%M:%S") in content
    assert "field-sent_at_s" in content
    assert "field-html_body" not in content and "field-delivered_at_s" not in content
    assert "field-media_urls" not in content and "Dependency" not in content


def test_an_error_code_links_to_the_providers_documentation(client, staff):
    message = MessageFactory(
        status=Status.UNDELIVERED, provider="twilio", last_error_code="30006", last_error_message="Landline."
    )
    message.events.create(to_status="undelivered", from_status="sent", code="30006")
    content = page_of(client, message)
    assert content.count('href="https://www.twilio.com/docs/api/errors/30006"') >= 2  # the error and the event
    ours = MessageFactory(status=Status.FAILED, provider="twilio", last_error_code="expired", last_error_message="x")
    assert "docs/api/errors/expired" not in page_of(client, ours)
