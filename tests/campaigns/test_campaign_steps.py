"""Multi-step campaigns (drip): follow-up steps stored per contact as messages depending on the step before."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from freezegun import freeze_time

from campaigns.models import Campaign, CampaignStep
from campaigns.services.campaign_lifecycle import campaign_cancel, campaign_launch, campaign_pause, campaign_resume
from campaigns.services.campaign_scheduler import campaigns_hold_stragglers
from campaigns.services.fan_out import campaign_fan_out
from deliveries.models import Message, Status
from deliveries.services.dependencies import dependencies_sweep
from deliveries.state import transition
from tests.campaigns.campaign_support import new_campaign
from tests.factories import ContactFactory, ContactListFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def email_template(**fields):
    fields.setdefault("body", "Still interested, {{ name }}?")
    return TemplateFactory(channel="email", subject="A reminder", variables={"name": None}, **fields)


def three_contacts():
    audience = ContactListFactory()
    for n in range(3):
        ContactFactory(
            lists=[audience],
            name=f"Person {n}",
            phone=f"+1415700000{n}",
            email=f"person{n}@example.com",
            sms_consent=True,
            email_consent=True,
        )
    return audience


def launched(campaign):
    campaign_launch(campaign=campaign, by="test")
    campaign_fan_out(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def test_each_contact_gets_the_first_message_and_a_waiting_follow_up_depending_on_it():
    campaign = new_campaign(three_contacts())
    follow_up = email_template()
    CampaignStep.objects.create(
        campaign=campaign, position=1, template=follow_up, condition="sent", delay=timedelta(days=2)
    )
    launched(campaign)

    first = Message.objects.filter(campaign=campaign, channel="sms")
    second = Message.objects.filter(campaign=campaign, channel="email")
    assert (first.count(), second.count(), campaign.targeted) == (3, 3, 6)
    for sms in first:
        email = second.get(depends_on=sms)
        assert email.status == Status.WAITING
        assert email.recipient == f"person{sms.recipient[-1]}@example.com"
        assert email.metadata == {"contact_id": sms.metadata["contact_id"], "campaign_step": 1}
        assert (email.depends_on_condition, email.depends_on_delay) == ("sent", timedelta(days=2))
        assert email.body == f"Still interested, Person {sms.recipient[-1]}?"

    # A second fan-out (a re-queued job) stores nothing twice.
    assert campaign_fan_out(campaign_id=campaign.pk) == 0
    assert Message.objects.filter(campaign=campaign).count() == 6

    # The first message sent releases the follow-up two days later; the others keep waiting.
    sms = first.order_by("pk").first()
    transition([sms.pk], to_status=Status.SENDING)
    transition([sms.pk], to_status=Status.SENT)
    released = second.get(depends_on=sms)
    assert released.status == Status.SCHEDULED
    assert released.send_at > timezone.now() + timedelta(days=1, hours=23)
    assert second.filter(status=Status.WAITING).count() == 2


def test_an_email_step_not_clicked_within_its_window_releases_the_next_one():
    start = timezone.now()
    with freeze_time(start) as clock:
        campaign = new_campaign(three_contacts(), template=email_template(body="Our offer, {{ first_name }}"))
        CampaignStep.objects.create(
            campaign=campaign,
            position=1,
            template=TemplateFactory(body="Did you see our email, {{ name }}?"),
            condition="not_clicked",
            window=timedelta(days=2),
        )
        launched(campaign)
        emails = list(Message.objects.filter(campaign=campaign, channel="email").order_by("pk"))
        texts = Message.objects.filter(campaign=campaign, channel="sms")
        assert {m.depends_on_id for m in texts} == {m.pk for m in emails}
        assert {m.depends_on_window for m in texts} == {timedelta(days=2)}
        ids = [m.pk for m in emails]
        transition(ids, to_status=Status.SENDING)
        transition(ids, to_status=Status.SENT)
        Message.objects.filter(pk=emails[0].pk).update(clicks_count=1, first_clicked_at=timezone.now())
        clock.tick(timedelta(days=2, seconds=1))
        assert dependencies_sweep() == {"released": 2, "cancelled": 1}
    assert texts.get(depends_on=emails[0]).status == Status.CANCELLED
    assert texts.filter(status=Status.SCHEDULED).count() == 2


def test_a_chain_stops_for_a_contact_who_cannot_receive_the_steps_channel():
    audience = three_contacts()
    ContactFactory(lists=[audience], name="No Email", phone="+14157000009", email="", sms_consent=True)
    campaign = new_campaign(audience)
    CampaignStep.objects.create(campaign=campaign, position=1, template=email_template())
    CampaignStep.objects.create(campaign=campaign, position=2, template=TemplateFactory(body="Last call {{ name }}"))
    launched(campaign)
    assert Message.objects.filter(campaign=campaign).count() == 4 + 3 + 3
    last = Message.objects.filter(campaign=campaign, metadata__campaign_step=2)
    assert {m.depends_on.metadata["campaign_step"] for m in last} == {1}


def test_launch_refuses_an_open_or_click_condition_after_a_step_that_is_not_email():
    campaign = new_campaign(three_contacts())
    CampaignStep.objects.create(campaign=campaign, position=1, template=email_template(), condition="not_clicked")
    CampaignStep.objects.create(
        campaign=campaign, position=3, template=email_template(), condition="delivered", window=timedelta(hours=1)
    )
    with pytest.raises(ValidationError) as raised:
        campaign_launch(campaign=campaign)
    problems = raised.value.message_dict["steps"]
    assert problems[0].startswith("Step 1: opens and clicks are only reported for email")
    assert problems[1] == "Step 3: a window applies to the not opened and not clicked conditions only."
    assert problems[2].startswith("Steps are numbered 1, 3;")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_cancel_cancels_the_waiting_follow_ups_too():
    campaign = new_campaign(three_contacts())
    CampaignStep.objects.create(campaign=campaign, position=1, template=email_template())
    launched(campaign)
    assert campaign_cancel(campaign=campaign, by="ops") == 6
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {Status.CANCELLED}


def test_pause_leaves_follow_ups_waiting_and_holds_one_released_during_the_pause():
    campaign = new_campaign(three_contacts())
    CampaignStep.objects.create(campaign=campaign, position=1, template=email_template(), condition="sent")
    launched(campaign)
    sms = Message.objects.filter(campaign=campaign, channel="sms").order_by("pk").first()
    transition([sms.pk], to_status=Status.SENDING)  # a worker has it when the pause comes
    assert campaign_pause(campaign=campaign) == 2  # the two SMS not yet claimed; waiting rows are not sendable
    assert Message.objects.filter(campaign=campaign, status=Status.WAITING).count() == 3
    transition([sms.pk], to_status=Status.SENT)  # ...and finishes: its follow-up is released
    assert Message.objects.get(depends_on=sms).status == Status.SCHEDULED
    assert campaigns_hold_stragglers() == 1  # the scheduler tick holds it while the campaign is paused
    assert Message.objects.get(depends_on=sms).status == Status.PAUSED
    assert campaign_resume(campaign=campaign) == 3
    assert Message.objects.get(depends_on=sms).status == Status.SCHEDULED


def test_a_recurring_campaigns_occurrences_carry_its_steps():
    from campaigns.services.campaign_scheduler import campaigns_fire_due_occurrences

    campaign = new_campaign(three_contacts(), recurrence="* * * * *")
    CampaignStep.objects.create(campaign=campaign, position=1, template=email_template(), delay=timedelta(hours=1))
    campaign_launch(campaign=campaign)
    campaign.refresh_from_db()
    assert campaigns_fire_due_occurrences(now=campaign.next_run_at + timedelta(seconds=1)) == 1
    occurrence = campaign.occurrences.get()
    assert list(occurrence.steps.values_list("position", "delay")) == [(1, timedelta(hours=1))]


def test_a_follow_up_step_to_a_country_its_channel_may_not_reach_is_not_stored_and_is_counted(settings):
    settings.SMS_ALLOWED_COUNTRIES = ["US"]
    audience = three_contacts()
    ContactFactory(
        lists=[audience], phone="+5511987654321", email="abroad@example.com", sms_consent=True, email_consent=True
    )
    campaign = new_campaign(audience, template=email_template())
    sms_step = TemplateFactory(channel="sms", body="Hi {{ name }}", variables={"name": None})
    CampaignStep.objects.create(campaign=campaign, position=1, template=sms_step, condition="sent")
    launched(campaign)
    assert Message.objects.filter(campaign=campaign, channel="email").count() == 4  # email has no country
    assert sorted(Message.objects.filter(campaign=campaign, channel="sms").values_list("recipient", flat=True)) == [
        f"+1415700000{n}" for n in range(3)
    ]
    assert (campaign.targeted, campaign.fanout_state["not_allowed"]) == (7, {"BR": 1})
