"""A campaign's fan-out in one process: render failures, a pause or a crash half-way, two runs at once."""

from datetime import time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Contact
from campaigns.selectors import campaign_progress
from campaigns.services import fan_out
from campaigns.services.campaign_lifecycle import (
    campaign_launch,
    campaign_resume,
)
from campaigns.services.campaign_scheduler import campaigns_tick
from campaigns.services.fan_out import campaign_fan_out
from deliveries.models import Message, Status
from deliveries.services.dispatch import dispatch_due_messages
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactFactory, ContactListFactory
from tests.support import at_once, other_connections, run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_contact_the_template_cannot_be_rendered_for_gets_a_failed_message_with_the_reason(sms_outbox):
    audience = ContactListFactory()
    ContactFactory(lists=[audience], name="")  # no name: first_name is missing
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    run_burst_worker()
    message = Message.objects.get(campaign=campaign)
    assert message.status == Status.FAILED
    assert "first_name" in message.last_error_message
    assert sms_outbox == []
    assert campaign_progress(campaign=campaign)["failed"] == 1


def test_a_fan_out_paused_half_way_carries_on_from_where_it_stopped_after_resume(sms_outbox, monkeypatch):
    audience = ContactListFactory()
    make_contacts(audience, 25)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    real_create = fan_out.messages_create_many
    calls = []

    def create_then_pause(**kwargs):
        real_create(**kwargs)
        calls.append(1)
        if len(calls) == 2:  # a person pauses while the fan-out is writing its third chunk
            Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED, paused_at=timezone.now())

    monkeypatch.setattr(fan_out, "messages_create_many", create_then_pause)
    # One process: `calls` counts in this one (the processes' own pause: test_fan_out_processes.py).
    assert campaign_fan_out(campaign_id=campaign.pk, chunk_size=10, processes=1) == 20
    campaign.refresh_from_db()
    assert (campaign.targeted, campaign.fanout_done) == (20, False)

    campaign_resume(campaign=campaign)
    run_burst_worker()  # the fan-out job queued by resume, then the sends
    dispatch_due_messages()
    run_burst_worker()
    assert Message.objects.filter(campaign=campaign).count() == 25
    assert sorted(m.recipient for m in sms_outbox) == sorted(Contact.objects.values_list("phone", flat=True))


def test_a_fan_out_that_crashed_mid_way_is_run_again_without_duplicates(monkeypatch):
    audience = ContactListFactory()
    make_contacts(audience, 25)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    real_create = fan_out.messages_create_many
    calls = []

    def crash_on_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real_create(**kwargs)

    monkeypatch.setattr(fan_out, "messages_create_many", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        campaign_fan_out(campaign_id=campaign.pk, chunk_size=10, processes=1)  # `calls` counts in this process
    monkeypatch.setattr(fan_out, "messages_create_many", real_create)
    campaign_fan_out(campaign_id=campaign.pk, chunk_size=10)
    campaign_fan_out(campaign_id=campaign.pk, chunk_size=10)  # a duplicate job finds nothing left
    phones = list(Message.objects.filter(campaign=campaign).values_list("recipient", flat=True))
    assert len(phones) == len(set(phones)) == 25
    campaign.refresh_from_db()
    assert campaign.targeted == 25


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the fan-out's writer thread is for PostgreSQL")
def test_two_fan_outs_of_one_campaign_at_once_write_each_contact_once_with_the_pacing_carried_on():
    # Each run renders its next chunk while its writer thread stores the one before: the chunks' claims (the
    # cursor's conditional UPDATE) still decide which run writes what, and the pacing state follows the chunks.
    audience = ContactListFactory()
    make_contacts(audience, 300)
    campaign = new_campaign(audience, rate_limit_per_minute=600)
    campaign_launch(campaign=campaign)
    before = other_connections()
    created = at_once(lambda: campaign_fan_out(campaign_id=campaign.pk, chunk_size=20), 2)
    assert sum(created) == 300
    messages = list(Message.objects.filter(campaign=campaign).order_by("metadata__contact_id"))
    assert len({message.recipient for message in messages}) == 300
    campaign.refresh_from_db()
    assert (campaign.targeted, campaign.fanout_done) == (300, True)
    # 600 a minute: one every 0.1 s, in the contacts' order, whichever run wrote their chunk.
    gaps = {(later.send_at - earlier.send_at) for earlier, later in zip(messages, messages[1:], strict=False)}
    assert gaps == {timedelta(seconds=0.1)}
    wait_for(lambda: other_connections() <= before, timeout=5, message="the writer threads' connections to close")


def test_a_local_time_campaign_with_nobody_to_send_to_completes():
    campaign = new_campaign(ContactListFactory(), schedule=Campaign.Schedule.LOCAL_TIME, local_time=time(9, 0))
    campaign_launch(campaign=campaign)
    run_burst_worker()
    campaigns_tick()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.targeted) == (Campaign.Status.COMPLETED, 0)


def test_no_message_is_created_for_a_contact_in_a_country_not_allowed_and_the_campaign_counts_them(
    settings, sms_outbox
):
    settings.SMS_ALLOWED_COUNTRIES = ["US"]
    audience = ContactListFactory()
    make_contacts(audience, 3)  # +1415…: US
    for phone in ("+5511987654321", "+5511987654322", "+881612345678", "+447400123456"):
        ContactFactory(lists=[audience], phone=phone)
    make_contacts(audience, 2)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    # Chunks of 2: the count carries on from one chunk to the next.
    assert campaign_fan_out(campaign_id=campaign.pk, chunk_size=2, processes=1) == 5
    assert sorted(Message.objects.filter(campaign=campaign).values_list("recipient", flat=True)) == [
        f"+1415{7000000 + i}" for i in (0, 1, 2, 7, 8)
    ]
    campaign.refresh_from_db()
    progress = campaign_progress(campaign=campaign)
    assert progress["not_allowed"] == {"BR": 2, "GB": 1, "unknown": 1}
    assert (progress["not_allowed_total"], progress["recipients"], progress["targeted"]) == (4, 5, 5)
    run_burst_worker()
    assert len(sms_outbox) == 5
