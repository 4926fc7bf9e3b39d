"""When a campaign's message goes to each contact: local times in their time zone, quiet hours."""

from datetime import UTC, datetime, time, timedelta

import pytest
from freezegun import freeze_time

from campaigns.models import Campaign
from campaigns.services.campaign_lifecycle import (
    campaign_launch,
)
from campaigns.services.campaign_scheduler import campaigns_tick
from campaigns.services.fan_out import campaign_fan_out
from deliveries.models import Message, Status
from deliveries.services.dispatch import dispatch_due_messages
from tests.campaigns.campaign_support import new_campaign
from tests.factories import ContactFactory, ContactListFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_the_quiet_hours_of_single_messages_leave_a_campaigns_messages_to_the_campaigns_own(settings):
    settings.QUIET_HOURS = "21:00-08:00"
    audience = ContactListFactory()
    ContactFactory(lists=[audience], phone="+447911123456")
    with freeze_time(datetime(2026, 6, 1, 22, 0, tzinfo=UTC)):  # 23:00 in London: the campaign has no quiet hours
        campaign = new_campaign(audience)
        campaign_launch(campaign=campaign)
        campaign_fan_out(campaign_id=campaign.pk)
    assert Message.objects.get(campaign=campaign).status == Status.QUEUED


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
