"""The audit trail: each action through its real entry point (admin, API, command) records who, what, on which
object and from where; the trail is read-only, for superusers, and kept AUDIT_RETENTION_DAYS."""

import base64
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign
from content.models import MessageTemplate
from deliveries.checks import check_retention_settings
from deliveries.models import ApiKey, AuditEntry, Batch, Message, Status, Suppression
from deliveries.services.api_keys import api_key_create
from deliveries.services.audit import audit_entries_prune, audit_record
from deliveries.services.suppression import suppression_add
from fake_providers.postmark import tracking_event
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactListFactory, MessageFactory, TemplateFactory
from tests.support import twilio_signed_post

pytestmark = pytest.mark.django_db(transaction=True)

Action = AuditEntry.Action
ADDRESS = "203.0.113.7"
TRAIL = "/admin/deliveries/auditentry/"


@pytest.fixture
def superuser(client):
    user = User.objects.create_superuser("root", password="pw")
    client.force_login(user)
    return user


@pytest.fixture
def draft():
    audience = ContactListFactory()
    make_contacts(audience, 2)
    return new_campaign(audience)


def only_entry(action) -> AuditEntry:
    (entry,) = AuditEntry.objects.filter(action=action)
    return entry


def assert_by_user(entry: AuditEntry, user, target) -> None:
    assert (entry.user, entry.actor, entry.api_key_id, entry.ip_address) == (user, user.username, None, ADDRESS)
    assert (entry.target_type, entry.target_id) == (target._meta.label_lower, str(target.pk))


def assert_by_key(entry: AuditEntry, api_key, target) -> None:
    assert (entry.user, entry.api_key_id, entry.ip_address) == (None, api_key.pk, ADDRESS)
    assert entry.actor == f"API key {api_key.name} ({api_key.prefix})"
    assert (entry.target_type, entry.target_id) == (target._meta.label_lower, str(target.pk))


# --- The admin --------------------------------------------------------------------------------------------------


def test_composing_a_message_in_the_admin_is_recorded(client, superuser):
    compose = {"channel": "sms", "to": "+14155550100", "body": "Hi", "priority": "default", "context": "{}"}
    client.post("/admin/deliveries/message/compose/", {**compose, "_send": "Send"}, REMOTE_ADDR=ADDRESS)
    assert_by_user(only_entry(Action.MESSAGE_CREATED), superuser, Message.objects.get())
    client.post("/admin/deliveries/message/compose/", {**compose, "_preview": "Preview"}, REMOTE_ADDR=ADDRESS)
    assert AuditEntry.objects.count() == 1  # a preview creates nothing


def test_cancelling_in_the_admin_records_each_message_cancelled_and_not_those_left_alone(client, superuser):
    queued, sent = MessageFactory(status=Status.QUEUED), MessageFactory(status=Status.SENT)
    client.post(
        "/admin/deliveries/message/",
        {"action": "cancel_selected", "_selected_action": [queued.pk, sent.pk]},
        REMOTE_ADDR=ADDRESS,
    )
    assert_by_user(only_entry(Action.MESSAGE_CANCELLED), superuser, queued)
    assert AuditEntry.objects.count() == 1


def test_retrying_and_settling_a_review_in_the_admin_are_recorded(client, superuser):
    failed, review = MessageFactory(status=Status.FAILED), MessageFactory(status=Status.REVIEW)
    url = "/admin/deliveries/message/"
    client.post(url, {"action": "retry_selected", "_selected_action": [failed.pk]}, REMOTE_ADDR=ADDRESS)
    client.post(url, {"action": "mark_reviewed_sent", "_selected_action": [review.pk]}, REMOTE_ADDR=ADDRESS)
    assert_by_user(only_entry(Action.MESSAGE_RETRIED), superuser, failed)
    reviewed = only_entry(Action.MESSAGE_REVIEWED)
    assert_by_user(reviewed, superuser, review)
    assert reviewed.details == {"resolution": "marked sent"}


def test_a_campaign_launched_by_its_button_and_paused_by_the_list_action_is_recorded(client, superuser, draft):
    client.post(f"/admin/campaigns/campaign/{draft.pk}/launch/", REMOTE_ADDR=ADDRESS)
    client.post(
        "/admin/campaigns/campaign/", {"action": "pause_selected", "_selected_action": [draft.pk]}, REMOTE_ADDR=ADDRESS
    )
    assert_by_user(only_entry(Action.CAMPAIGN_LAUNCHED), superuser, draft)
    assert_by_user(only_entry(Action.CAMPAIGN_PAUSED), superuser, draft)
    client.post(f"/admin/campaigns/campaign/{draft.pk}/pause/", REMOTE_ADDR=ADDRESS)  # already paused: refused
    assert AuditEntry.objects.filter(action=Action.CAMPAIGN_PAUSED).count() == 1


def test_a_suppression_added_and_lifted_in_the_admin_is_recorded(client, superuser):
    client.post(
        "/admin/deliveries/suppression/add/",
        {"channel": "sms", "address": "+14155550142", "reason": "manual", "detail": "asked by phone"},
        REMOTE_ADDR=ADDRESS,
    )
    entry = Suppression.objects.get()
    assert_by_user(only_entry(Action.SUPPRESSION_ADDED), superuser, entry)
    client.post(f"/admin/deliveries/suppression/{entry.pk}/delete/", {"post": "yes"}, REMOTE_ADDR=ADDRESS)
    lifted = only_entry(Action.SUPPRESSION_LIFTED)
    assert_by_user(lifted, superuser, entry)
    assert lifted.details == {"reason": "manual"}
    assert lifted.target_repr == "sms +14155550142 (Added by hand)"


def test_revoking_keys_in_the_admin_records_each_key_revoked(client, superuser):
    active, _ = api_key_create(name="billing")
    revoked, _ = api_key_create(name="old")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    client.post(
        "/admin/deliveries/apikey/",
        {"action": "revoke_selected", "_selected_action": [active.pk, revoked.pk]},
        REMOTE_ADDR=ADDRESS,
    )
    assert_by_user(only_entry(Action.KEY_REVOKED), superuser, active)


def test_a_template_saved_in_the_admin_is_recorded_with_the_fields_changed(client, superuser):
    template = TemplateFactory(name="Welcome", slug="welcome", body="Hi {{ name }}")
    form = {
        "name": "Welcome",
        "slug": "welcome",
        "channel": "sms",
        "language": "en",
        "variables": '{"name": null}',
        "sample_context": "{}",
        "subject": "",
        "body": "Hello {{ name }}",
        "html_body": "",
        "translations-TOTAL_FORMS": "0",
        "translations-INITIAL_FORMS": "0",
    }
    response = client.post(f"/admin/content/messagetemplate/{template.pk}/change/", form, REMOTE_ADDR=ADDRESS)
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = only_entry(Action.TEMPLATE_CHANGED)
    assert_by_user(entry, superuser, template)
    assert entry.details["change"] == "changed" and "body" in entry.details["fields"]


# --- The API ----------------------------------------------------------------------------------------------------


def test_a_message_cancelled_through_the_api_is_recorded_with_its_key(api, api_key):
    message = MessageFactory(status=Status.SCHEDULED, send_at=timezone.now() + timedelta(hours=1))
    assert api.post(f"/api/v1/messages/{message.pk}/cancel/", REMOTE_ADDR=ADDRESS).status_code == 200
    assert_by_key(only_entry(Action.MESSAGE_CANCELLED), api_key, message)
    assert api.post(f"/api/v1/messages/{message.pk}/cancel/", REMOTE_ADDR=ADDRESS).status_code == 409
    assert AuditEntry.objects.count() == 1


def test_campaign_lifecycle_through_the_api_is_recorded_with_its_key(api, api_key, draft):
    assert api.post(f"/api/v1/campaigns/{draft.pk}/launch/", REMOTE_ADDR=ADDRESS).status_code == 200
    assert api.post(f"/api/v1/campaigns/{draft.pk}/cancel/", REMOTE_ADDR=ADDRESS).status_code == 200
    assert_by_key(only_entry(Action.CAMPAIGN_LAUNCHED), api_key, draft)
    assert_by_key(only_entry(Action.CAMPAIGN_CANCELLED), api_key, draft)
    assert Campaign.objects.get().status == Campaign.Status.CANCELLED


def test_a_batch_is_recorded_once_and_a_single_api_message_not_at_all(api, api_key):
    items = [{"to": f"+1415555010{i}"} for i in range(3)]
    body = {"defaults": {"channel": "sms", "body": "Hi"}, "messages": items}
    assert api.post("/api/v1/messages/batch/", body, format="json", REMOTE_ADDR=ADDRESS).status_code == 201
    entry = only_entry(Action.BATCH_CREATED)
    assert_by_key(entry, api_key, Batch.objects.get())
    assert entry.details == {"accepted": 3, "rejected": 0}
    single = {"channel": "sms", "to": "+14155550100", "body": "Hi"}
    assert api.post("/api/v1/messages/", single, format="json").status_code == 201
    assert AuditEntry.objects.count() == 1  # no write per API message: the message itself names its key


def test_template_writes_through_the_api_are_recorded_and_a_refused_delete_is_not(api, api_key, draft):
    created = api.post(
        "/api/v1/templates/",
        {"name": "Promo", "slug": "promo", "channel": "sms", "body": "Hi"},
        format="json",
        REMOTE_ADDR=ADDRESS,
    ).json()
    template = MessageTemplate.objects.get(slug="promo")
    api.patch(f"/api/v1/templates/{template.pk}/", {"body": "Hello"}, format="json", REMOTE_ADDR=ADDRESS)
    assert api.delete(f"/api/v1/templates/{draft.template.pk}/", REMOTE_ADDR=ADDRESS).status_code == 409
    assert api.delete(f"/api/v1/templates/{created['id']}/", REMOTE_ADDR=ADDRESS).status_code == 204
    entries = AuditEntry.objects.filter(action=Action.TEMPLATE_CHANGED).order_by("pk")
    assert [e.details["change"] for e in entries] == ["created", "changed", "deleted"]
    for entry in entries:
        assert_by_key(entry, api_key, template)


def test_a_request_without_an_ip_address_is_recorded_without_one(api, api_key):
    message = MessageFactory(status=Status.QUEUED)
    assert api.post(f"/api/v1/messages/{message.pk}/cancel/", REMOTE_ADDR="/run/gunicorn.sock").status_code == 200
    entry = only_entry(Action.MESSAGE_CANCELLED)
    assert (entry.api_key_id, entry.ip_address) == (api_key.pk, None)


def test_behind_trusted_proxies_the_address_is_the_one_the_outermost_proxy_saw(api, api_key, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    message = MessageFactory(status=Status.QUEUED)
    forwarded = {"HTTP_X_FORWARDED_FOR": f"10.9.9.9, {ADDRESS}", "REMOTE_ADDR": "10.0.0.2"}
    assert api.post(f"/api/v1/messages/{message.pk}/cancel/", **forwarded).status_code == 200
    assert only_entry(Action.MESSAGE_CANCELLED).ip_address == ADDRESS  # not the proxy's, nor what the client wrote


# --- Commands ---------------------------------------------------------------------------------------------------


def test_a_key_created_with_the_command_is_recorded_with_the_command_as_actor():
    call_command("create_api_key", "billing", stdout=io.StringIO(), stderr=io.StringIO())
    entry = only_entry(Action.KEY_CREATED)
    assert entry.actor.startswith("manage.py create_api_key")
    assert (entry.user, entry.ip_address, entry.target_id) == (None, None, str(ApiKey.objects.get().pk))


def test_a_bulk_send_is_recorded_once_and_a_dry_run_not_at_all(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("to\n+14155550101\n+14155550102\n", encoding="utf-8")
    options = {"csv": str(path), "channel": "sms", "body": "Hi", "no_progress": True, "stdout": io.StringIO()}
    call_command("send_bulk", dry_run=True, **options)
    assert not AuditEntry.objects.exists()
    call_command("send_bulk", **options)
    entry = only_entry(Action.BATCH_CREATED)
    assert entry.actor.startswith("manage.py send_bulk")
    assert entry.target_id == str(Batch.objects.get().pk)
    assert entry.details == {"file": str(path), "accepted": 2, "rejected": 0}
    call_command("send_bulk", **options)  # the same file again: nobody sent twice, nothing new to record
    assert AuditEntry.objects.count() == 1


# --- Providers: only a lift, the direction a forger would want ---------------------------------------------------


def test_a_start_reply_that_lifts_an_opt_out_is_recorded_and_a_stop_is_not(client, settings):
    settings.TWILIO_AUTH_TOKEN = "test-auth-token"
    params = {"AccountSid": "AC" + "0" * 32, "From": "+14155550100", "To": "+15005550006", "NumMedia": "0"}
    for sid, body in [("SM1", "STOP"), ("SM2", "START"), ("SM3", "START")]:
        reply = {**params, "MessageSid": sid, "Body": body}
        response = twilio_signed_post(client, "/webhooks/twilio/inbound/", reply, auth_token="test-auth-token")
        assert response.status_code == 200
    entry = only_entry(Action.SUPPRESSION_LIFTED)  # the second START had nothing left to lift
    assert entry.actor == "Twilio inbound reply"
    assert (entry.target_type, entry.target_repr) == ("deliveries.inboundmessage", "sms from +14155550100: START")
    assert entry.details == {"channel": "sms", "address": "+14155550100", "keyword": "start"}
    assert AuditEntry.objects.count() == 1


def test_a_resubscribe_event_that_lifts_an_opt_out_is_recorded(client, settings):
    secret = "tidings:webhook-secret"
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"  # only the ESP mail goes through answers
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": secret}
    message = MessageFactory(
        channel="email", recipient="ada@example.com", status=Status.SENT, provider="postmark", provider_message_id="m1"
    )
    recorded = {"MessageID": "m1", "metadata": {"tidings_message_id": str(message.pk)}, "from": "t@example.com"}
    unsubscribed = tracking_event("SubscriptionChange", recorded, "ada@example.com")
    auth = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}
    for payload in (unsubscribed, {**unsubscribed, "SuppressSending": False}):
        url = "/webhooks/anymail/postmark/tracking/"
        assert client.post(url, json.dumps(payload), content_type="application/json", **auth).status_code == 200
    assert not Suppression.objects.exists()
    entry = only_entry(Action.SUPPRESSION_LIFTED)
    assert (entry.actor, entry.target_id) == ("postmark tracking event", str(message.pk))
    assert entry.details == {"channel": "email", "address": "ada@example.com", "event_type": "subscribed"}


# --- The trail in the admin -------------------------------------------------------------------------------------


def test_the_trail_is_read_only_even_for_superusers(client, superuser):
    entry = audit_record(action=Action.KEY_CREATED, actor="manage.py create_api_key")
    assert client.get(TRAIL).status_code == 200
    page = client.get(f"{TRAIL}{entry.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.get(f"{TRAIL}add/").status_code == 403
    assert client.post(f"{TRAIL}{entry.pk}/change/", {"actor": "someone else"}).status_code == 403
    assert client.post(f"{TRAIL}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(TRAIL, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    entry.refresh_from_db()
    assert entry.actor == "manage.py create_api_key"


def test_the_trail_filters_by_action_actor_and_date_and_escapes_what_it_shows(client, superuser):
    hostile = suppression_add(channel="email", address="<img src=x onerror=alert(1)>@x.io", reason="manual", source="")
    audit_record(action=Action.SUPPRESSION_ADDED, target=hostile, actor=superuser)
    audit_record(action=Action.KEY_CREATED, actor="<script>alert(1)</script>")
    page = client.get(TRAIL).content.decode()
    assert "<img src=x" not in page and "<script>alert(1)" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    by_action = client.get(TRAIL, {"action__exact": "suppression_added"}).context["cl"]
    by_actor = client.get(TRAIL, {"actor": "<script>alert(1)</script>"}).context["cl"]
    assert [e.action for e in by_action.result_list] == ["suppression_added"]
    assert [e.action for e in by_actor.result_list] == ["key_created"]
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)  # as the "Today" link sends
    tomorrow = today + timedelta(days=1)
    dated = client.get(TRAIL, {"created_at__gte": str(today), "created_at__lt": str(tomorrow)}).context["cl"]
    assert dated.result_count == 2
    before = client.get(TRAIL, {"created_at__lt": str(today)}).context["cl"]
    assert before.result_count == 0


# --- Retention --------------------------------------------------------------------------------------------------


def aged(days: float) -> AuditEntry:
    entry = audit_record(action=Action.KEY_CREATED, actor=f"{days} days ago")
    AuditEntry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=days))
    return entry


def test_the_sweep_deletes_only_entries_older_than_the_retention(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    old, older, recent = aged(31), aged(400), aged(29)
    assert audit_entries_prune() == 2
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [recent.pk]
    assert audit_entries_prune() == 0
    assert not AuditEntry.objects.filter(pk__in=[old.pk, older.pk]).exists()


@pytest.mark.parametrize(("days", "refused"), [(-1, True), (0, True), (1, False), (365, False)])
def test_a_retention_that_would_delete_the_whole_trail_is_refused_at_start(settings, days, refused):
    settings.AUDIT_RETENTION_DAYS = days
    found = {m.id: m.msg for m in check_retention_settings()}
    assert ("tidings.E021" in found) is refused
    if refused:
        assert found["tidings.E021"].startswith(f"AUDIT_RETENTION_DAYS is {days}: the reconciler would delete")


def test_the_sweep_works_in_chunks_oldest_first(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    oldest, old, _ = aged(90), aged(60), aged(40)
    assert audit_entries_prune(limit=2) == 2
    assert not AuditEntry.objects.filter(pk__in=[oldest.pk, old.pk]).exists()
    assert AuditEntry.objects.count() == 1


def test_the_dispatchers_reconcile_pass_applies_the_retention(settings):
    old, recent = aged(366), aged(1)
    call_command("run_dispatcher", "--once", stdout=io.StringIO())
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk
