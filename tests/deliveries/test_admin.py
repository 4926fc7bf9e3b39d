from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from deliveries.models import Message, Status
from tests.factories import MessageFactory, TemplateFactory

pytestmark = pytest.mark.django_db(transaction=True)

COMPOSE = "/admin/deliveries/message/compose/"
CHANGELIST = "/admin/deliveries/message/"


@pytest.fixture
def staff(client):
    """A staff member who may view messages but holds no other permission."""
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(user)
    return user


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


def test_compose_needs_the_add_permission(client, staff):
    assert client.get(COMPOSE).status_code == 403
    grant(staff, "add_message")
    assert client.get(COMPOSE).status_code == 200


def test_compose_preview_renders_without_storing(client, staff):
    grant(staff, "add_message")
    TemplateFactory(slug="hello", body="Hello {{ name }}, welcome!")
    template_id = str(Message._meta.get_field("template").related_model.objects.get(slug="hello").pk)
    response = client.post(
        COMPOSE,
        {
            "channel": "sms",
            "to": "+14155550100",
            "template": template_id,
            "context": '{"name": "Ada"}',
            "priority": "default",
            "_preview": "Preview",
        },
    )
    assert response.status_code == 200
    assert "Hello Ada, welcome!" in response.content.decode()
    assert Message.objects.count() == 0


def test_compose_send_schedules_a_message_created_by_the_staff_user(client, staff):
    grant(staff, "add_message")
    send_at = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        COMPOSE,
        {
            "channel": "sms",
            "to": "+14155550100",
            "body": "See you tomorrow",
            "send_at": send_at,
            "priority": "high",
            "context": "{}",
            "_send": "Send",
        },
    )
    message = Message.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}{message.pk}/change/"
    assert message.status == Status.SCHEDULED
    assert message.created_by == staff
    assert message.priority == "high"


def test_compose_shows_field_errors_from_the_shared_validation(client, staff):
    grant(staff, "add_message")
    response = client.post(COMPOSE, {"channel": "sms", "to": "12", "body": "", "priority": "default", "_send": "1"})
    content = response.content.decode()
    assert response.status_code == 200
    assert "not a phone number" in content
    assert "Give a body" in content
    assert Message.objects.count() == 0


def test_message_page_shows_the_timeline(client, staff):
    message = MessageFactory(status=Status.QUEUED)
    message.events.create(to_status="queued", detail="Created by the test.")
    response = client.get(f"{CHANGELIST}{message.pk}/change/")
    assert response.status_code == 200
    assert "Created by the test." in response.content.decode()


def test_cancel_action_needs_its_permission(client, staff):
    message = MessageFactory(status=Status.SCHEDULED, send_at=timezone.now() + timedelta(hours=1))
    data = {"action": "cancel_selected", "_selected_action": [message.pk]}
    client.post(CHANGELIST, data)
    assert Message.objects.get(pk=message.pk).status == Status.SCHEDULED
    grant(staff, "cancel_message")
    client.post(CHANGELIST, data)
    assert Message.objects.get(pk=message.pk).status == Status.CANCELLED


def test_retry_action_requeues_only_failed_messages(client, staff):
    grant(staff, "retry_message")
    failed = MessageFactory(status=Status.FAILED, last_error_message="boom")
    sent = MessageFactory(status=Status.SENT)
    client.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [failed.pk, sent.pk]})
    assert Message.objects.get(pk=failed.pk).status == Status.QUEUED
    assert Message.objects.get(pk=sent.pk).status == Status.SENT


def test_queue_dashboard_is_for_superusers_only(client, staff):
    assert client.get("/admin/queues/").status_code == 302
    staff.is_superuser = True
    staff.save()
    assert client.get("/admin/queues/").status_code == 200
