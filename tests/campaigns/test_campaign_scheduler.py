"""The campaign scheduler's tick: recurring campaigns' occurrences, and duties that fail."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone
from freezegun import freeze_time

from campaigns.models import Campaign
from campaigns.services import campaign_scheduler
from campaigns.services.campaign_lifecycle import (
    campaign_launch,
)
from campaigns.services.campaign_scheduler import campaigns_fire_due_occurrences, campaigns_tick
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactListFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


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
