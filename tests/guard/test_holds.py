"""Held messages going out again where they belong, and what the caps still see: a paused campaign's messages wait
for it, a dependent one waits for its parent, a person's retry is checked by the caps, a release is audited."""

from decimal import Decimal

import pytest

from campaigns.services.campaign_lifecycle import campaign_launch, campaign_pause, campaign_resume
from deliveries.models import AuditEntry, Message, Status
from deliveries.services.dispatch import dispatch_due_messages
from deliveries.services.holds import held_messages_release
from deliveries.services.messages import message_create, message_request_validate, message_retry
from deliveries.state import transition
from guard.models import Price, SpendCap
from guard.services.spend_caps import spend_cap_save
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactListFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sms_price():
    Price.objects.create(channel="sms", country="", price=Decimal("0.0100"), currency="USD")


def sms_cap(amount: str) -> SpendCap:
    return SpendCap.objects.create(
        scope="channel", scope_value="sms", period="day", currency="USD", amount=Decimal(amount)
    )


def create(**fields) -> Message:
    request, content = message_request_validate(**{"channel": "sms", "to": "+14155550100", "body": "hi", **fields})
    return message_create(request=request, content=content)


def test_a_raised_cap_does_not_send_a_paused_campaigns_held_messages_until_it_resumes(sms_outbox, sms_price):
    cap = sms_cap("0.02")
    audience = ContactListFactory()
    make_contacts(audience, 5)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign, by="test")
    run_burst_worker()
    assert len(sms_outbox) == 2
    campaign_pause(campaign=campaign, by="test")
    cap.amount = Decimal("1.00")
    spend_cap_save(cap=cap)  # re-admits what it held: behind the pause
    run_burst_worker()
    assert len(sms_outbox) == 2
    assert Message.objects.filter(campaign=campaign, status=Status.PAUSED).count() == 3
    campaign_resume(campaign=campaign, by="test")
    dispatch_due_messages()  # resumed messages are scheduled: the dispatcher queues them
    run_burst_worker()
    assert len({message.recipient for message in sms_outbox}) == len(sms_outbox) == 5


def test_a_person_releasing_a_paused_campaigns_held_message_does_not_send_it_behind_the_pause(
    sms_outbox, sms_price, admin_client
):
    sms_cap("0.01")
    audience = ContactListFactory()
    make_contacts(audience, 3)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign, by="test")
    run_burst_worker()
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "2 held by the cost guard" in page and "status__exact=held" in page
    campaign_pause(campaign=campaign, by="test")
    held = list(Message.objects.filter(campaign=campaign, status=Status.HELD).values_list("pk", flat=True))
    assert len(held_messages_release(message_ids=held, by="op")) == 2
    run_burst_worker()
    assert len(sms_outbox) == 1
    assert set(Message.objects.filter(pk__in=held).values_list("status", flat=True)) == {Status.PAUSED}


def test_a_released_dependent_message_waits_for_its_parent_and_is_cancelled_if_the_parent_fails(settings):
    settings.RECIPIENT_HOURLY_LIMIT = 1
    parent = create(body="first")
    child = create(body="second", depends_on=parent.pk)  # the second message to the number this hour: held
    child.refresh_from_db()
    assert child.status == Status.HELD
    held_messages_release(message_ids=[child.pk], by="op")
    child.refresh_from_db()
    assert child.status == Status.WAITING
    transition([parent.pk], to_status=Status.FAILED, from_statuses=[Status.QUEUED], detail="provider said no")
    child.refresh_from_db()
    assert child.status == Status.CANCELLED


def test_a_persons_retry_of_a_failed_message_is_checked_by_the_caps_again(sms_outbox, sms_price):
    sms_cap("0")  # nothing may be spent
    message = create(body="first")
    # It went to the provider once (counted then, by the claim) and failed there.
    Message.objects.filter(pk=message.pk).update(status=Status.FAILED, attempts=1, spend_counted=True)
    assert message_retry(message=message, by="op")
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.HELD
    assert sms_outbox == []


def test_releasing_velocity_held_codes_from_the_admin_is_audited_once_each(admin_client, api):
    otp = {"channel": "sms", "body": "Your code is 1", "category": "transactional", "purpose": "otp"}
    ids = [api.post("/api/v1/messages/", {**otp, "to": "+447400123456"}, format="json").json()["id"] for _ in range(7)]
    held = list(Message.objects.filter(pk__in=ids, status=Status.HELD).values_list("pk", flat=True))
    assert len(held) == 2  # OTP_RECIPIENT_HOURLY_LIMIT: 5
    response = admin_client.post(
        "/admin/deliveries/message/", {"action": "release_selected", "_selected_action": held}, follow=True
    )
    assert "Released 2 message(s)." in response.content.decode()
    audited = AuditEntry.objects.filter(action=AuditEntry.Action.MESSAGES_RELEASED)
    assert sorted(int(entry.target_id) for entry in audited) == sorted(held)


@pytest.mark.parametrize("bound", ["countries", "cap"])
def test_a_key_with_its_own_countries_or_cap_may_not_launch_a_campaign_whose_messages_would_escape_them(
    bound, api, api_key, sms_outbox
):
    if bound == "countries":
        api_key.allowed_countries = ["GB"]
        api_key.save()
    else:
        SpendCap.objects.create(
            scope="api_key", scope_value=str(api_key.pk), period="day", currency="USD", amount=Decimal("1")
        )
    audience = ContactListFactory()
    make_contacts(audience, 3)  # +1 415 numbers: the US
    campaign = new_campaign(audience)
    response = api.post(f"/api/v1/campaigns/{campaign.pk}/launch/")
    assert response.status_code == 403
    said = response.json()["detail"]
    assert ("its own destination countries (GB)" if bound == "countries" else "its own spend cap") in said
    campaign.refresh_from_db()
    assert campaign.status == campaign.Status.DRAFT
    run_burst_worker()
    assert sms_outbox == []


def test_a_held_messages_page_says_why_it_is_held_and_offers_the_release(admin_client, settings):
    settings.RECIPIENT_HOURLY_LIMIT = 1
    create(body="first")
    held = create(body="second")
    page = admin_client.get(f"/admin/deliveries/message/{held.pk}/change/").content.decode()
    assert "<strong>Held by the cost guard" in page and "<strong>Last error" not in page
    assert "passed the limit of 1 per recipient" in page and "Release this message" in page
