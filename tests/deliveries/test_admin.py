import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.utils import timezone
from django.utils.formats import date_format

from deliveries.models import ApiKey, Batch, Message, Status
from deliveries.services.api_keys import api_key_authenticate, api_key_create
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


def test_message_page_shows_opens_clicks_and_the_suppression_that_stops_it(client, staff):
    from deliveries.services.suppression import suppression_add

    message = MessageFactory(
        channel="email", recipient="ada@example.com", status=Status.SUPPRESSED, opens_count=2, clicks_count=1
    )
    suppression_add(channel="email", address="ada@example.com", reason="hard_bounce", source="Postmark bounced")
    content = client.get(f"{CHANGELIST}{message.pk}/change/").content.decode()
    assert "Engagement" in content
    assert "Hard bounce" in content and "Postmark bounced" in content and "blocks this message" in content
    assert "field-opens_count" in content and "field-clicks_count" in content


def test_staff_add_a_suppression_by_hand_normalised_like_a_recipient(client, staff):
    from deliveries.models import Suppression

    grant(staff, "add_suppression", "view_suppression")
    response = client.post(
        "/admin/deliveries/suppression/add/",
        {"channel": "sms", "address": "+1 (415) 555-0100", "reason": "manual", "detail": "Asked by phone"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason, entry.source, entry.created_by) == (
        "+14155550100",
        "manual",
        "admin: operator",
        staff,
    )
    listing = client.get("/admin/deliveries/suppression/?q=555").content.decode()
    assert "+14155550100" in listing


def test_a_bad_address_cannot_be_added_to_the_suppression_list(client, staff):
    from deliveries.models import Suppression

    grant(staff, "add_suppression")
    response = client.post(
        "/admin/deliveries/suppression/add/", {"channel": "sms", "address": "hello", "reason": "manual"}
    )
    assert response.status_code == 200
    assert "not a phone number" in response.content.decode()
    assert not Suppression.objects.exists()


def test_compose_sends_whatsapp_with_a_category(client, staff):
    grant(staff, "add_message")
    response = client.post(
        COMPOSE,
        {
            "channel": "whatsapp",
            "to": "+14155550100",
            "body": "Your order shipped",
            "category": "transactional",
            "priority": "default",
            "context": "{}",
            "media_urls": "https://example.com/parcel.jpg\n",
            "_send": "Send",
        },
    )
    assert response.status_code == 302
    message = Message.objects.get()
    assert (message.channel, message.category, message.media_urls) == (
        "whatsapp",
        "transactional",
        ["https://example.com/parcel.jpg"],
    )


def test_the_message_list_summarises_outcomes_and_engagement(client, staff):
    MessageFactory(channel="email", recipient="a@example.com", status=Status.DELIVERED, opens_count=2)
    MessageFactory(channel="email", recipient="b@example.com", status=Status.UNDELIVERED)
    content = client.get(CHANGELIST).content.decode()
    assert "Of these 2:" in content
    assert "1 delivered (50% of those reported)" in content
    assert "1 opened (100% of delivered email)" in content


def test_message_page_shows_what_it_waits_for_and_who_waits_for_it(client, staff):
    parent = MessageFactory(status=Status.SENT)
    child = MessageFactory(
        status=Status.WAITING, depends_on=parent, depends_on_condition="delivered", depends_on_delay=timedelta(hours=2)
    )
    content = client.get(f"{CHANGELIST}{child.pk}/change/").content.decode()
    assert f'href="{CHANGELIST}{parent.pk}/change/">Message #{parent.pk}</a> (Sent)' in content
    assert f"message #{parent.pk} delivered, then 2 hours" in content
    content = client.get(f"{CHANGELIST}{parent.pk}/change/").content.decode()
    assert f'href="{CHANGELIST}{child.pk}/change/">#{child.pk}</a> (Waiting for another message)' in content
    listing = client.get(f"{CHANGELIST}?status__exact=waiting").content.decode()
    assert "Waiting for another message" in listing


def test_compose_takes_a_too_late_cutoff(client, staff):
    grant(staff, "add_message")
    response = client.post(
        COMPOSE,
        {
            "channel": "sms",
            "to": "+14155550100",
            "body": "Your code is 1234",
            "priority": "high",
            "category": "transactional",
            "valid_for": "600",
            "context": "{}",
            "_send": "Send",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    message = Message.objects.get()
    assert message.expires_at is not None
    assert 590 <= (message.expires_at - message.created_at).total_seconds() <= 610


def test_the_api_key_list_shows_scopes_expiry_rate_and_last_use_and_revokes(client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    expires = timezone.now() + timedelta(days=30)
    api_key, raw = api_key_create(
        name="shop", scopes=["messages:send", "messages:read"], expires_at=expires, rate="100/second"
    )
    api_key = api_key_authenticate(raw)  # sets last_used_at
    page = client.get("/admin/deliveries/apikey/").content.decode()
    assert "messages:send, messages:read" in page
    assert "100/second" in page
    row = page.split('name="_selected_action"', 1)[1].split("</tr>", 1)[0]
    assert date_format(timezone.localtime(expires), "DATETIME_FORMAT") in row
    assert date_format(timezone.localtime(api_key.last_used_at), "DATE_FORMAT") in row
    detail = client.get(f"/admin/deliveries/apikey/{api_key.pk}/change/").content.decode()
    assert "messages:send, messages:read" in detail
    assert raw.split("_", 2)[2] not in detail and api_key.key_hash not in detail

    client.post("/admin/deliveries/apikey/", {"action": "revoke_selected", "_selected_action": [api_key.pk]})
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert api_key_authenticate(raw) is None


def test_batches_are_listed_read_only_with_their_messages_by_status(client, staff, tmp_path):
    grant(staff, "view_batch")
    path = tmp_path / "people.csv"
    path.write_text("to\n+14155550101\n")
    call_command("send_bulk", csv=str(path), channel="sms", body="Hi", no_progress=True, stdout=io.StringIO())
    batch = Batch.objects.get()
    page = client.get(f"/admin/deliveries/batch/{batch.pk}/change/").content.decode()
    assert "queued 1" in page
    assert client.get(f"/admin/deliveries/message/?batch__id__exact={batch.pk}").status_code == 200


def test_a_keys_countries_are_edited_in_the_admin_and_may_not_widen_the_global_lists(client, settings):
    settings.SMS_ALLOWED_COUNTRIES = ["GB", "US"]
    client.force_login(User.objects.create_superuser("root", password="pw"))
    api_key, raw = api_key_create(name="shop", scopes=["messages:send"])
    url = f"/admin/deliveries/apikey/{api_key.pk}/change/"
    refused = client.post(url, {"allowed_countries": "GB, BR"})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["allowed_countries"] == [
        "BR is not in SMS_ALLOWED_COUNTRIES (GB, US): a key's countries can only narrow the ones allowed to all."
    ]
    api_key.refresh_from_db()
    assert api_key.allowed_countries == []
    assert client.post(url, {"allowed_countries": "gb"}).status_code == 302
    api_key.refresh_from_db()
    assert (api_key.allowed_countries, api_key.scopes, api_key.name) == (["GB"], ["messages:send"], "shop")
    assert api_key_authenticate(raw).allowed_countries == ["GB"]  # the cached key was forgotten on save
    assert 'value="GB"' in client.get(url).content.decode()
