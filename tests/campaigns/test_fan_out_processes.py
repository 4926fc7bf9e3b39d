"""A campaign's fan-out in several forked processes (PostgreSQL, outside a transaction, no rate limit)."""

import os

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Contact
from campaigns.services import fan_out
from campaigns.services.campaign_lifecycle import campaign_launch, campaign_resume
from campaigns.services.fan_out import campaign_fan_out
from campaigns.services.forked import ProcessFailed
from deliveries.models import Message, Status
from deliveries.services.dispatch import dispatch_due_messages
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactListFactory, TemplateFactory
from tests.support import at_once, other_connections, run_burst_worker, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the fan-out's processes are for PostgreSQL"),
]


def launched(count: int, **fields) -> Campaign:
    audience = ContactListFactory()
    make_contacts(audience, count)
    campaign = new_campaign(audience, template=TemplateFactory(body="Hi {{ name }}"), **fields)
    campaign_launch(campaign=campaign)
    return campaign


def written(campaign: Campaign) -> list[tuple[int, str, str]]:
    """(contact id, recipient, body) of each of the campaign's messages, in contact order."""
    return sorted(
        (message.metadata["contact_id"], message.recipient, message.body)
        for message in Message.objects.filter(campaign=campaign)
    )


def test_processes_write_what_one_process_writes_and_close_their_connections(tmp_path, monkeypatch):
    one = launched(95)
    assert campaign_fan_out(campaign_id=one.pk, chunk_size=10, processes=1) == 95
    three = new_campaign(one.contact_list, template=one.template)
    campaign_launch(campaign=three)
    real_create, writers = fan_out.messages_create_many, tmp_path / "writers"

    def noting_the_writer(**kwargs):
        with writers.open("a") as file:
            file.write(f"{os.getpid()}\n")
        return real_create(**kwargs)

    monkeypatch.setattr(fan_out, "messages_create_many", noting_the_writer)
    before = other_connections()
    assert campaign_fan_out(campaign_id=three.pk, chunk_size=10, processes=3) == 95
    pids = writers.read_text().split()
    assert len(pids) == 10 and str(os.getpid()) not in pids  # each chunk stored by a forked process
    assert written(three) == written(one)
    assert len({to for _, to, _ in written(three)}) == 95
    for campaign in (one, three):
        campaign.refresh_from_db()
    assert (three.targeted, three.fanout_done, three.fanout_cursor) == (95, True, one.fanout_cursor)
    assert three.starts_at is not None
    wait_for(lambda: other_connections() <= before, timeout=5, message="the processes' connections to close")


def test_a_pause_while_processes_write_stops_them_and_resume_writes_the_rest_once(sms_outbox, monkeypatch):
    campaign = launched(100)
    real_create = fan_out.messages_create_many

    def create_then_pause(**kwargs):  # in the processes: a person pauses once 30 messages are stored
        stored = real_create(**kwargs)
        if Message.objects.filter(campaign=campaign).count() >= 30:
            Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED, paused_at=timezone.now())
        return stored

    monkeypatch.setattr(fan_out, "messages_create_many", create_then_pause)
    created = campaign_fan_out(campaign_id=campaign.pk, chunk_size=10, processes=2)
    monkeypatch.setattr(fan_out, "messages_create_many", real_create)
    campaign.refresh_from_db()
    # The pause came in the third chunk's transaction (chunks are stored one after another): none after it.
    assert created == 30
    assert (campaign.status, campaign.fanout_done) == (Campaign.Status.PAUSED, False)
    assert campaign.targeted == created == Message.objects.filter(campaign=campaign).count()

    campaign_resume(campaign=campaign)
    run_burst_worker()  # the fan-out job queued by resume, then the sends
    dispatch_due_messages()
    run_burst_worker()
    recipients = [to for _, to, _ in written(campaign)]
    assert len(recipients) == len(set(recipients)) == 100
    assert sorted(m.recipient for m in sms_outbox) == sorted(recipients)


def test_a_process_failing_stops_the_fan_out_and_running_it_again_writes_each_contact_once(monkeypatch):
    campaign = launched(100)
    contacts = sorted(campaign.contact_list.contacts.values_list("pk", flat=True))
    failing_contact = contacts[35]
    real_create = fan_out.messages_create_many

    def failing_on_the_fourth_chunk(**kwargs):
        if any(request.metadata["contact_id"] == failing_contact for request, _ in kwargs["items"]):
            raise RuntimeError("the database went away")
        return real_create(**kwargs)

    monkeypatch.setattr(fan_out, "messages_create_many", failing_on_the_fourth_chunk)
    with pytest.raises(ProcessFailed) as raised:
        campaign_fan_out(campaign_id=campaign.pk, chunk_size=10, processes=2)
    assert "RuntimeError: the database went away" in str(raised.value)
    campaign.refresh_from_db()
    # Every chunk before the failing one is stored and claimed; none after it.
    assert campaign.targeted == Message.objects.filter(campaign=campaign).count() == 30
    assert campaign.fanout_cursor == contacts[29]

    monkeypatch.setattr(fan_out, "messages_create_many", real_create)
    assert campaign_fan_out(campaign_id=campaign.pk, chunk_size=10, processes=2) == 70
    assert campaign_fan_out(campaign_id=campaign.pk, chunk_size=10, processes=2) == 0  # a duplicate job
    recipients = [to for _, to, _ in written(campaign)]
    assert len(recipients) == len(set(recipients)) == 100
    campaign.refresh_from_db()
    assert (campaign.targeted, campaign.fanout_done) == (100, True)


def test_two_fan_outs_in_processes_at_once_write_each_contact_once():
    campaign = launched(300)
    created = at_once(lambda: campaign_fan_out(campaign_id=campaign.pk, chunk_size=20, processes=2), 2)
    assert sum(created) == 300
    recipients = [to for _, to, _ in written(campaign)]
    assert len(recipients) == len(set(recipients)) == 300
    campaign.refresh_from_db()
    assert (campaign.targeted, campaign.fanout_done) == (300, True)
    assert Message.objects.filter(campaign=campaign).exclude(status=Status.QUEUED).count() == 0


def test_processes_add_up_the_contacts_left_out_by_country_across_their_chunks(settings):
    settings.SMS_ALLOWED_COUNTRIES = ["US"]
    audience = ContactListFactory()
    for start in range(0, 40, 4):  # every chunk of 4 has one contact in Brazil
        make_contacts(audience, 3)
        Contact.objects.create(name="Abroad", phone=f"+55119876543{start:02d}", sms_consent=True).lists.add(audience)
    campaign = new_campaign(audience, template=TemplateFactory(body="Hi {{ name }}"))
    campaign_launch(campaign=campaign)
    assert campaign_fan_out(campaign_id=campaign.pk, chunk_size=4, processes=3) == 30
    campaign.refresh_from_db()
    assert campaign.fanout_state["not_allowed"] == {"BR": 10}
    assert not Message.objects.filter(recipient__startswith="+55").exists()
