"""The campaign lifecycle and fan-out, in process: launch, pause, resume, cancel, schedules, recurrence."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection
from django.utils import timezone
from freezegun import freeze_time

from campaigns.models import Campaign, Contact
from campaigns.selectors import campaign_progress
from campaigns.services import campaign_scheduler
from campaigns.services import campaigns as campaign_services
from campaigns.services.campaign_scheduler import campaigns_fire_due_occurrences, campaigns_tick
from campaigns.services.campaigns import (
    CampaignStateError,
    campaign_cancel,
    campaign_fan_out,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)
from deliveries.models import Message, Status
from deliveries.sending.job import send_messages
from deliveries.services.dispatch import dispatch_due_messages
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactFactory, ContactListFactory
from tests.support import at_once, other_connections, run_burst_worker, wait_for

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


def test_a_fan_out_paused_half_way_carries_on_from_where_it_stopped_after_resume(sms_outbox, monkeypatch):
    audience = ContactListFactory()
    make_contacts(audience, 25)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    real_create = campaign_services.messages_create_many
    calls = []

    def create_then_pause(**kwargs):
        real_create(**kwargs)
        calls.append(1)
        if len(calls) == 2:  # a person pauses while the fan-out is writing its third chunk
            Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED, paused_at=timezone.now())

    monkeypatch.setattr(campaign_services, "messages_create_many", create_then_pause)
    # One process: `calls` counts in this one (the processes' own pause: test_campaign_fan_out_processes.py).
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
    real_create = campaign_services.messages_create_many
    calls = []

    def crash_on_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real_create(**kwargs)

    monkeypatch.setattr(campaign_services, "messages_create_many", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        campaign_fan_out(campaign_id=campaign.pk, chunk_size=10, processes=1)  # `calls` counts in this process
    monkeypatch.setattr(campaign_services, "messages_create_many", real_create)
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


def test_contacts_in_three_time_zones_each_get_the_0900_message_at_0900_their_time(sms_outbox):
    audience = ContactListFactory()
    zones = {"Asia/Tokyo": "+14157000001", "Europe/Paris": "+14157000002", "America/New_York": "+14157000003"}
    for zone, phone in zones.items():
        ContactFactory(lists=[audience], phone=phone, time_zone=zone, name=zone)
    ContactFactory(lists=[audience], phone="+14157000004", time_zone="", name="Nobody Knows")  # campaign's zone
    launch_time = datetime(2026, 3, 9, 22, 0, tzinfo=UTC)  # 07:00 on the 10th in Tokyo
    with freeze_time(launch_time) as clock:
        campaign = new_campaign(
            audience,
            schedule=Campaign.Schedule.LOCAL_TIME,
            local_time=time(9, 0),
            local_date=datetime(2026, 3, 10).date(),
            time_zone="Europe/London",
        )
        campaign_launch(campaign=campaign)
        run_burst_worker()
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.SCHEDULED
        assert campaign.starts_at == datetime(2026, 3, 10, 0, 0, tzinfo=UTC)

        sent_at = {}
        # Walk the clock through the day: a minute before each 09:00 nothing goes to that zone, then it does.
        nines = [datetime(2026, 3, 10, hour, 0, tzinfo=UTC) for hour in (0, 8, 9, 13)]
        moments = [launch_time, *(t + delta for t in nines for delta in (timedelta(minutes=-1), timedelta(0)))]
        for moment in [*moments, datetime(2026, 3, 10, 23, 0, tzinfo=UTC)]:
            clock.move_to(moment)
            campaigns_tick()
            dispatch_due_messages()
            run_burst_worker()
            for message in sms_outbox:
                sent_at.setdefault(message.recipient, moment)
    assert sent_at == {
        "+14157000001": datetime(2026, 3, 10, 0, 0, tzinfo=UTC),  # 09:00 in Tokyo (UTC+9)
        "+14157000002": datetime(2026, 3, 10, 8, 0, tzinfo=UTC),  # 09:00 in Paris (UTC+1)
        "+14157000004": datetime(2026, 3, 10, 9, 0, tzinfo=UTC),  # 09:00 in London (the campaign's zone)
        "+14157000003": datetime(2026, 3, 10, 13, 0, tzinfo=UTC),  # 09:00 in New York (UTC-4 since March 8)
    }
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


def test_quiet_hours_push_a_send_to_their_end_in_the_recipients_time():
    audience = ContactListFactory()
    ContactFactory(lists=[audience], time_zone="America/Los_Angeles")
    with freeze_time(datetime(2026, 6, 1, 5, 0, tzinfo=UTC)):  # 22:00 the evening before in Los Angeles
        campaign = new_campaign(audience, quiet_hours_start=time(21, 0), quiet_hours_end=time(8, 0))
        campaign_launch(campaign=campaign)
        campaign_fan_out(campaign_id=campaign.pk)
    message = Message.objects.get(campaign=campaign)
    assert message.status == Status.SCHEDULED
    assert message.send_at == datetime(2026, 6, 1, 15, 0, tzinfo=UTC)  # 08:00 in Los Angeles (UTC-7)


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


def test_a_recurring_campaign_fires_each_occurrence_once_however_many_schedulers_ask(sms_outbox):
    audience = ContactListFactory()
    make_contacts(audience, 3)
    with freeze_time(datetime(2026, 6, 1, 8, 0, tzinfo=UTC)) as clock:  # a Monday
        campaign = new_campaign(audience, recurrence="0 9 * * MON", time_zone="Europe/Paris")
        campaign_launch(campaign=campaign)
        assert campaign.next_run_at == datetime(2026, 6, 8, 7, 0, tzinfo=UTC)  # next Monday 09:00 in Paris
        clock.move_to(datetime(2026, 6, 8, 7, 0, 1, tzinfo=UTC))
        assert [campaigns_fire_due_occurrences(now=timezone.now()) for _ in range(3)] == [1, 0, 0]
        run_burst_worker()
        with pytest.raises(IntegrityError):  # and the database refuses a second run of that occurrence
            Campaign.objects.create(name="dup", parent=campaign, occurrence_at=datetime(2026, 6, 8, 7, 0, tzinfo=UTC))
    [occurrence] = campaign.occurrences.all()
    assert occurrence.occurrence_at == datetime(2026, 6, 8, 7, 0, tzinfo=UTC)
    assert len(sms_outbox) == 3
    campaign.refresh_from_db()
    assert campaign.next_run_at == datetime(2026, 6, 15, 7, 0, tzinfo=UTC)
    assert campaign.status == Campaign.Status.SCHEDULED


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


def test_a_local_time_campaign_with_nobody_to_send_to_completes():
    campaign = new_campaign(ContactListFactory(), schedule=Campaign.Schedule.LOCAL_TIME, local_time=time(9, 0))
    campaign_launch(campaign=campaign)
    run_burst_worker()
    campaigns_tick()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.targeted) == (Campaign.Status.COMPLETED, 0)


def test_a_failing_scheduler_duty_is_logged_and_the_others_still_run(monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(campaign_scheduler, "campaigns_fire_due_occurrences", broken)
    audience = ContactListFactory()
    campaign = new_campaign(audience, schedule=Campaign.Schedule.AT, send_at=timezone.now() + timedelta(hours=1))
    campaign_launch(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(starts_at=timezone.now())
    report = campaigns_tick()
    assert report.started == 1
    assert "Campaign scheduler: 'fired' failed; trying again at the next tick" in caplog.text


def test_a_pause_rolled_back_by_a_deadlock_is_tried_again(monkeypatch, caplog):
    audience = ContactListFactory()
    make_contacts(audience, 3)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    campaign_fan_out(campaign_id=campaign.pk)
    real_hold = campaign_services._hold_messages
    calls = []

    def deadlock_once(campaign, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("deadlock detected")
        return real_hold(campaign, **kwargs)

    monkeypatch.setattr(campaign_services, "_hold_messages", deadlock_once)
    assert campaign_pause(campaign=campaign) == 3
    assert campaign.status == Campaign.Status.PAUSED
    assert "campaign_pause met a concurrent update; trying again" in caplog.text


def test_a_contact_with_an_unknown_time_zone_gets_the_campaigns_time():
    audience = ContactListFactory()
    ContactFactory(lists=[audience], time_zone="Mars/Olympus_Mons")  # stored bypassing the contact services
    with freeze_time(datetime(2026, 6, 1, 6, 0, tzinfo=UTC)):
        campaign = new_campaign(
            audience, schedule=Campaign.Schedule.LOCAL_TIME, local_time=time(9, 0), time_zone="Europe/Paris"
        )
        campaign_launch(campaign=campaign)
        campaign_fan_out(campaign_id=campaign.pk)
    assert Message.objects.get(campaign=campaign).send_at == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
