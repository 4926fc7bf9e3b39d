"""Staff roles: Viewers read every page and change nothing, Operators act, and what is for superusers stays so."""

import types
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from campaigns.models import Campaign, Contact, ContactList, Segment
from content.models import MessageTemplate
from deliveries.models import ApiKey, AuditEntry, InboundMessage, Message, Status, Suppression
from deliveries.services.api_keys import api_key_create
from deliveries.services.audit import audit_record
from deliveries.services.suppression import suppression_add
from deliveries.staff_roles import OPERATORS, ROLES, VIEWERS, staff_roles_ensure
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactFactory, ContactListFactory, MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN = "/admin/"


@pytest.fixture
def roles():
    # A transactional test starts from an empty database (the previous test's flush removed what migrations
    # wrote), so the groups are made here by the function the migration runs.
    staff_roles_ensure()


def member(client, role: str, username: str | None = None) -> User:
    user = User.objects.create_user(username or role.lower(), password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client, roles):
    return member(client, VIEWERS)


@pytest.fixture
def operator(client, roles):
    return member(client, OPERATORS)


@pytest.fixture
def objects():
    """One of everything the admin shows."""
    audience = ContactListFactory(name="Regulars")
    make_contacts(audience, 2)
    campaign = new_campaign(audience)
    return types.SimpleNamespace(
        queued=MessageFactory(status=Status.QUEUED),
        failed=MessageFactory(status=Status.FAILED),
        review=MessageFactory(status=Status.REVIEW),
        campaign=campaign,
        template=campaign.template,
        contact=Contact.objects.first(),
        contact_list=audience,
        segment=Segment.objects.create(name="Everyone", contact_list=audience, match="all", filters=[]),
        suppression=suppression_add(channel="sms", address="+14155550199", reason="hard_bounce", source="test"),
        inbound=InboundMessage.objects.create(
            channel="sms", sender="+14155550123", body="Hello", provider="twilio", provider_message_id="SM1"
        ),
        api_key=api_key_create(name="billing")[0],
    )


def change_url(obj) -> str:
    return f"{ADMIN}{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/change/"


def delete_url(obj) -> str:
    return f"{ADMIN}{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/delete/"


def list_url(model) -> str:
    return f"{ADMIN}{model._meta.app_label}/{model._meta.model_name}/"


# --- The groups --------------------------------------------------------------------------------------------------


def test_the_roles_are_built_on_a_fresh_database_and_building_them_again_changes_nothing():
    Permission.objects.all().delete()  # as before post_migrate has run on a new database
    staff_roles_ensure()
    staff_roles_ensure()
    operators = Group.objects.get(name=OPERATORS)
    viewers = Group.objects.get(name=VIEWERS)
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in operators.permissions.all()}
    assert granted == set(ROLES[OPERATORS])
    assert {"deliveries.cancel_message", "deliveries.retry_message", "campaigns.launch_campaign"} <= granted
    assert not {"deliveries.delete_suppression", "deliveries.view_apikey", "deliveries.view_auditentry"} & granted
    assert all(p.codename.startswith("view_") for p in viewers.permissions.all())
    assert Group.objects.count() == 2


def test_building_the_roles_again_keeps_a_permission_granted_by_hand(roles):
    viewers = Group.objects.get(name=VIEWERS)
    viewers.permissions.add(Permission.objects.get(codename="add_contact"))
    staff_roles_ensure()
    assert viewers.permissions.filter(codename="add_contact").exists()


def test_the_migration_builds_the_roles_with_the_models_as_they_were_then():
    Group.objects.all().delete()
    loader = MigrationLoader(connection)
    (key,) = [key for key in loader.disk_migrations if key[0] == "deliveries" and key[1].endswith("_staff_roles")]
    state = loader.project_state(key, at_end=False)
    loader.disk_migrations[key].operations[0].code(state.apps, types.SimpleNamespace(connection=connection))
    assert set(Group.objects.values_list("name", flat=True)) == {OPERATORS, VIEWERS}
    assert Group.objects.get(name=OPERATORS).permissions.filter(codename="launch_campaign").exists()


# --- Viewers read everything staff read ----------------------------------------------------------------------------


def test_a_viewer_can_open_every_page_staff_read(client, viewer, objects):
    pages = [ADMIN] + [
        url
        for obj in [
            objects.queued,
            objects.campaign,
            objects.template,
            objects.contact,
            objects.contact_list,
            objects.segment,
            objects.suppression,
            objects.inbound,
        ]
        for url in (list_url(type(obj)), change_url(obj))
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url
    assert client.get(f"{list_url(Campaign)}{objects.campaign.pk}/progress/").status_code == 200


def test_a_viewer_sees_no_button_to_act(client, viewer, objects):
    assert "Compose message" not in client.get(list_url(Message)).content.decode()
    campaign_page = client.get(change_url(objects.campaign)).content.decode()
    assert "data-lifecycle" not in campaign_page
    assert 'name="_save"' not in campaign_page
    contacts = client.get(list_url(Contact)).content.decode()
    assert "/import/" not in contacts
    messages = client.get(list_url(Message)).content.decode()
    assert "cancel_selected" not in messages and "retry_selected" not in messages
    suppression_page = client.get(change_url(objects.suppression)).content.decode()
    assert "/delete/" not in suppression_page


@pytest.mark.parametrize(
    "action, status",
    [
        ("cancel_selected", Status.QUEUED),
        ("retry_selected", Status.FAILED),
        ("resend_reviewed", Status.REVIEW),
        ("mark_reviewed_sent", Status.REVIEW),
        ("mark_reviewed_failed", Status.REVIEW),
    ],
)
def test_a_viewer_cannot_use_a_message_action(client, viewer, objects, action, status):
    message = {Status.QUEUED: objects.queued, Status.FAILED: objects.failed, Status.REVIEW: objects.review}[status]
    response = client.post(list_url(Message), {"action": action, "_selected_action": [message.pk]})
    assert response.status_code in (200, 302)  # Django answers an action the user may not use with the list
    message.refresh_from_db()
    assert message.status == status
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("action", ["launch", "pause", "resume", "cancel"])
def test_a_viewer_cannot_launch_pause_resume_or_cancel_a_campaign(client, viewer, objects, action):
    campaign = objects.campaign
    assert client.post(f"{list_url(Campaign)}{campaign.pk}/{action}/").status_code == 403
    client.post(list_url(Campaign), {"action": f"{action}_selected", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert not AuditEntry.objects.exists()


def test_a_viewer_cannot_compose_add_change_delete_or_import(client, viewer, objects):
    assert client.get(f"{list_url(Message)}compose/").status_code == 403
    compose = {"channel": "sms", "to": "+14155550100", "body": "Hi", "priority": "default"}
    assert client.post(f"{list_url(Message)}compose/", compose).status_code == 403
    for model in (Campaign, MessageTemplate, Contact, ContactList, Segment, Suppression):
        assert client.get(f"{list_url(model)}add/").status_code == 403, model
    renamed = {"name": "Renamed", "template": objects.template.pk, "contact_list": objects.contact_list.pk}
    assert client.post(change_url(objects.campaign), renamed).status_code == 403
    assert client.post(change_url(objects.contact), {"name": "Renamed", "phone": "+14155550111"}).status_code == 403
    preview = {"channel": "sms", "body": "Hi"}
    assert client.post(f"{list_url(MessageTemplate)}preview/", preview).status_code == 403
    assert client.get(f"{list_url(Contact)}import/").status_code == 403
    suppression = objects.suppression
    assert client.post(delete_url(suppression), {"post": "yes"}).status_code == 403
    assert client.post(delete_url(objects.template), {"post": "yes"}).status_code == 403
    assert Campaign.objects.get().name == "Spring sale"
    assert Suppression.objects.filter(pk=suppression.pk).exists()
    assert MessageTemplate.objects.filter(pk=objects.template.pk).exists()
    assert Message.objects.count() == 3
    assert not AuditEntry.objects.exists()


# --- Operators act ---------------------------------------------------------------------------------------------


def test_an_operator_composes_cancels_and_retries(client, operator, objects):
    assert "Compose message" in client.get(list_url(Message)).content.decode()
    compose = {
        "channel": "sms",
        "to": "+14155550100",
        "body": "Hi",
        "priority": "default",
        "context": "{}",
        "_send": "Send",
    }
    assert client.post(f"{list_url(Message)}compose/", compose).status_code == 302
    assert Message.objects.filter(recipient="+14155550100", created_by=operator).exists()
    client.post(list_url(Message), {"action": "cancel_selected", "_selected_action": [objects.queued.pk]})
    client.post(list_url(Message), {"action": "retry_selected", "_selected_action": [objects.failed.pk]})
    objects.queued.refresh_from_db()
    objects.failed.refresh_from_db()
    assert objects.queued.status == Status.CANCELLED
    assert objects.failed.status == Status.QUEUED


def test_an_operator_launches_and_pauses_a_campaign_from_its_page(client, operator, objects):
    campaign = objects.campaign
    assert 'data-lifecycle="launch"' in client.get(change_url(campaign)).content.decode()
    client.post(f"{list_url(Campaign)}{campaign.pk}/launch/")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    client.post(f"{list_url(Campaign)}{campaign.pk}/pause/")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_an_operator_edits_templates_and_contacts_and_imports(client, operator, objects):
    assert client.get(f"{list_url(MessageTemplate)}add/").status_code == 200
    assert client.get(f"{list_url(Contact)}import/").status_code == 200
    assert client.post(f"{list_url(MessageTemplate)}preview/", {"channel": "sms", "body": "Hi"}).status_code == 200
    ContactFactory(name="Ada")
    assert client.get(f"{list_url(Contact)}add/").status_code == 200


def test_an_operator_adds_a_suppression_but_cannot_lift_one(client, operator, objects):
    added = client.post(
        f"{list_url(Suppression)}add/", {"channel": "sms", "address": "+14155550142", "reason": "manual", "detail": ""}
    )
    assert added.status_code == 302
    entry = Suppression.objects.get(address="+14155550142")
    delete = delete_url(entry)
    assert client.post(delete, {"post": "yes"}).status_code == 403
    client.post(list_url(Suppression), {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert Suppression.objects.filter(pk=entry.pk).exists()


def test_an_operator_can_neither_see_nor_use_api_keys_nor_the_audit_trail(client, operator, objects):
    audit_record(action=AuditEntry.Action.KEY_CREATED, target=objects.api_key, actor="someone")
    index = client.get(ADMIN).content.decode()
    assert list_url(ApiKey) not in index and list_url(AuditEntry) not in index
    assert client.get(list_url(ApiKey)).status_code == 403
    assert client.get(change_url(objects.api_key)).status_code == 403
    client.post(list_url(ApiKey), {"action": "revoke_selected", "_selected_action": [objects.api_key.pk]})
    objects.api_key.refresh_from_db()
    assert objects.api_key.revoked_at is None
    assert client.get(list_url(AuditEntry)).status_code == 403
    assert client.get(f"{ADMIN}queues/").status_code == 302  # to the login page: superusers only


def test_a_permission_granted_by_hand_does_not_open_the_superusers_pages(client, operator, objects):
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_apikey", "change_apikey", "delete_suppression"])
    )
    assert client.get(list_url(ApiKey)).status_code == 403
    delete = delete_url(objects.suppression)
    assert client.post(delete, {"post": "yes"}).status_code == 403


def test_a_superuser_revokes_keys_and_lifts_suppressions(client, objects):
    admin = User.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    assert client.get(list_url(ApiKey)).status_code == 200
    client.post(list_url(ApiKey), {"action": "revoke_selected", "_selected_action": [objects.api_key.pk]})
    objects.api_key.refresh_from_db()
    assert objects.api_key.revoked_at is not None
    delete = delete_url(objects.suppression)
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not Suppression.objects.filter(pk=objects.suppression.pk).exists()


def test_importing_contacts_needs_both_adding_and_changing_them(client, roles):
    user = member(client, VIEWERS, "importer")
    user.user_permissions.add(Permission.objects.get(codename="add_contact"))
    assert client.get(f"{list_url(Contact)}import/").status_code == 403  # an import also changes contacts
    user.user_permissions.add(Permission.objects.get(codename="change_contact"))
    assert client.get(f"{list_url(Contact)}import/").status_code == 200


@pytest.mark.parametrize("role", [VIEWERS, OPERATORS])
def test_staff_read_the_price_list_and_only_superusers_change_it(client, roles, role):
    from guard.models import Price

    member(client, role)
    price = Price.objects.create(channel="sms", country="GB", price="0.04", currency="USD")
    listed = client.get("/admin/guard/price/")
    assert listed.status_code == 200 and "GB" in listed.content.decode()
    assert client.get("/admin/guard/price/add/").status_code == 403
    assert client.post(f"/admin/guard/price/{price.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(
        f"/admin/guard/price/{price.pk}/change/", {"channel": "sms", "country": "GB", "price": "9", "currency": "USD"}
    )
    price.refresh_from_db()
    assert price.price == Decimal("0.04")
