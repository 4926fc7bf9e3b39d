"""The campaign lifecycle, in process: launch, pause, resume, cancel, and what each does to the messages."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.utils import timezone
from freezegun import freeze_time

from campaigns.models import Campaign, Contact
from campaigns.selectors import campaign_progress
from campaigns.services import campaign_lifecycle
from campaigns.services.campaign_lifecycle import (
    CampaignStateError,
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)
from campaigns.services.campaign_scheduler import campaigns_fire_due_occurrences, campaigns_tick
from campaigns.services.fan_out import campaign_fan_out
from deliveries.models import Message, Status
from deliveries.sending.job import send_messages
from deliveries.services.dispatch import dispatch_due_messages
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactFactory, ContactListFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_launched_campaign_sends_each_eligible_contact_one_message_then_completes(sms_outbox):
    audience = ContactListFactory()
    make_contacts(audience, 25)
    ContactFactory(lists=[audience], sms_consent=False)  # no consent: left out
    ContactFactory(lists=[audience], phone="", email="only@example.com")  # no phone: left out
    campaign = new_campaign(audience)

    campaign_launch(campaign=campaign, by="test")
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.excluded == 2
    run_burst_worker()  # the fan-out job, then the send jobs it queued

    campaign.refresh_from_db()
    assert (campaign.targeted, campaign.fanout_done) == (25, True)
    assert sorted(m.recipient for m in sms_outbox) == sorted(
        Contact.objects.filter(sms_consent=True, phone__gt="").values_list("phone", flat=True)
    )
    assert sms_outbox[0].body.startswith("Hi Person")
    assert campaigns_tick().completed == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    progress = campaign_progress(campaign=campaign)
    assert (progress["targeted"], progress["sent"], progress["failed"], progress["waiting"]) == (25, 25, 0, 0)


def test_launch_refuses_an_unready_campaign_field_by_field():
    campaign = Campaign.objects.create(name="Empty", schedule=Campaign.Schedule.AT, recurrence="every monday")
    with pytest.raises(ValidationError) as raised:
        campaign_launch(campaign=campaign)
    assert set(raised.value.message_dict) == {"template", "contact_list", "send_at", "recurrence", "schedule"}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_pause_holds_what_is_not_sent_and_resume_sends_it_without_sending_anyone_twice(sms_outbox, clean_redis):
    audience = ContactListFactory()
    make_contacts(audience, 30)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    campaign_fan_out(campaign_id=campaign.pk)
    # Half of the messages go out; then the campaign is paused with the rest still queued.
    half = list(Message.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)[:15])
    send_messages(half)
    assert campaign_pause(campaign=campaign, by="ops") == 15
    run_burst_worker()  # the queued jobs run but find nothing to claim
    assert len(sms_outbox) == 15
    assert campaign_progress(campaign=campaign)["waiting"] == 15
    with pytest.raises(CampaignStateError):
        campaign_pause(campaign=campaign)

    assert campaign_resume(campaign=campaign, by="ops") == 15
    assert dispatch_due_messages() == 15
    run_burst_worker()
    assert len(sms_outbox) == 30
    assert len({m.recipient for m in sms_outbox}) == 30
    held = Message.objects.get(pk=Message.objects.filter(campaign=campaign).order_by("pk").last().pk)
    assert [e.to_status for e in held.events.all()] == ["queued", "paused", "scheduled", "queued", "sending", "sent"]


def test_cancel_marks_everything_not_yet_sent_cancelled(sms_outbox):
    audience = ContactListFactory()
    make_contacts(audience, 10)
    campaign = new_campaign(audience, schedule=Campaign.Schedule.AT, send_at=timezone.now() + timedelta(hours=1))
    campaign_launch(campaign=campaign)
    assert campaign.status == Campaign.Status.SCHEDULED
    run_burst_worker()
    assert campaign_cancel(campaign=campaign, by="ops") == 10
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {Status.CANCELLED}
    with pytest.raises(CampaignStateError):
        campaign_resume(campaign=campaign)


def test_a_rate_limit_spreads_the_send_times_and_a_pause_shifts_them_by_its_length():
    audience = ContactListFactory()
    make_contacts(audience, 5)
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with freeze_time(start) as clock:
        campaign = new_campaign(audience, rate_limit_per_minute=2)
        campaign_launch(campaign=campaign)
        campaign_fan_out(campaign_id=campaign.pk, chunk_size=2)
        send_times = list(Message.objects.filter(campaign=campaign).order_by("pk").values_list("send_at", flat=True))
        assert send_times == [start + timedelta(seconds=30 * i) for i in range(5)]
        campaign_pause(campaign=campaign)
        clock.tick(timedelta(minutes=10))
        campaign_resume(campaign=campaign)
    resumed = list(Message.objects.filter(campaign=campaign).order_by("pk").values_list("send_at", flat=True))
    assert resumed == [t + timedelta(minutes=10) for t in send_times]


def test_pausing_a_recurring_campaign_stops_its_occurrences_until_resumed():
    audience = ContactListFactory()
    with freeze_time(datetime(2026, 6, 1, 8, 0, tzinfo=UTC)) as clock:
        campaign = new_campaign(audience, recurrence="0 9 * * *")
        campaign_launch(campaign=campaign)
        campaign_pause(campaign=campaign)
        clock.move_to(datetime(2026, 6, 3, 12, 0, tzinfo=UTC))
        assert campaigns_fire_due_occurrences(now=timezone.now()) == 0
        campaign_resume(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.next_run_at == datetime(2026, 6, 4, 9, 0, tzinfo=UTC)


def test_a_pause_rolled_back_by_a_deadlock_is_tried_again(monkeypatch, caplog):
    audience = ContactListFactory()
    make_contacts(audience, 3)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    campaign_fan_out(campaign_id=campaign.pk)
    real_hold = campaign_lifecycle._hold_messages
    calls = []

    def deadlock_once(campaign, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("deadlock detected")
        return real_hold(campaign, **kwargs)

    monkeypatch.setattr(campaign_lifecycle, "_hold_messages", deadlock_once)
    assert campaign_pause(campaign=campaign) == 3
    assert campaign.status == Campaign.Status.PAUSED
    assert "campaign_pause met a concurrent update; trying again" in caplog.text
