"""Campaigns with real worker and dispatcher processes, the test database, Redis and the fake Twilio."""

import time

import pytest

from campaigns.models import Campaign
from campaigns.selectors import campaign_progress
from campaigns.services.campaign_lifecycle import campaign_launch, campaign_pause, campaign_resume
from deliveries.models import Message, Status
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactListFactory
from tests.support import process_env, provider_env, start_manage, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_campaign_to_10000_contacts_paused_half_way_and_resumed_sends_each_contact_exactly_once(fake_twilio):
    audience = ContactListFactory()
    contacts = make_contacts(audience, 10_000)
    campaign = new_campaign(audience)
    env = process_env(**provider_env(fake_twilio), CAMPAIGN_TICK_INTERVAL="0.2")
    processes = [start_manage("run_worker", env=env) for _ in range(2)]
    processes.append(start_manage("run_dispatcher", "--interval", "0.1", env=env))
    try:
        campaign_launch(campaign=campaign, by="test")
        wait_for(lambda: fake_twilio.request_count >= 4000, timeout=60, interval=0.01, message="4,000 sends")

        paused_at = time.time()  # when the person pressed "pause"
        campaign_pause(campaign=campaign, by="test")
        time.sleep(1.0)
        sent_by_pause = fake_twilio.request_count
        assert sent_by_pause < 10_000, "the campaign finished before the pause; nothing was tested"
        last = max(m["received_at"] for m in fake_twilio.received) - paused_at
        assert last < 1.0, f"a message reached the provider {last:.2f}s after the pause began"
        time.sleep(1.5)  # workers keep running their queued jobs; none of those messages may go out
        assert fake_twilio.request_count == sent_by_pause
        # What a worker had claimed before the pause finishes; everything else is held.
        wait_for(
            lambda: not Message.objects.filter(campaign=campaign, status=Status.SENDING).exists(),
            timeout=10,
            message="claimed messages recorded",
        )
        progress = campaign_progress(campaign=campaign)
        assert progress["waiting"] > 0
        assert progress["waiting"] + progress["sent"] == progress["targeted"], progress

        campaign_resume(campaign=campaign, by="test")
        wait_for(
            lambda: Message.objects.filter(campaign=campaign, status=Status.SENT).count() == 10_000,
            timeout=90,
            interval=0.5,
            message="10,000 messages sent",
        )
        wait_for(
            lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED,
            timeout=10,
            message="the campaign completed",
        )
    finally:
        outputs = [stop(p) for p in processes]
    assert "Traceback" not in "".join(outputs), outputs
    per_recipient = fake_twilio.count_by_to()
    assert set(per_recipient) == {c.phone for c in contacts}
    assert set(per_recipient.values()) == {1}
    assert fake_twilio.request_count == 10_000


def test_three_dispatchers_fire_each_occurrence_of_a_recurring_campaign_once(fake_twilio):
    audience = ContactListFactory()
    contacts = make_contacts(audience, 3)
    campaign = new_campaign(audience, recurrence="* * * * * */2")  # croniter's sixth field: every 2 seconds
    env = process_env(**provider_env(fake_twilio), CAMPAIGN_TICK_INTERVAL="0.1")
    processes = [start_manage("run_worker", env=env)]
    processes += [start_manage("run_dispatcher", "--interval", "0.1", env=env) for _ in range(3)]
    try:
        campaign_launch(campaign=campaign)
        wait_for(lambda: campaign.occurrences.count() >= 3, timeout=30, interval=0.1, message="three occurrences")
        campaign_pause(campaign=campaign)
        wait_for(
            lambda: (
                not Message.objects.exclude(status=Status.SENT).exists()
                and Message.objects.count() == 3 * campaign.occurrences.count()
            ),
            timeout=30,
            message="every occurrence sent",
        )
    finally:
        outputs = [stop(p) for p in processes]
    assert "Traceback" not in "".join(outputs), outputs
    occurrences = list(campaign.occurrences.values_list("occurrence_at", flat=True))
    assert len(occurrences) == len(set(occurrences))
    assert all(at.second % 2 == 0 for at in occurrences)
    # Each occurrence sent once to each contact, however many dispatchers saw it come due. (If this fails, the
    # messages and what the fake received say which occurrence went missing, and where.)
    story = {
        "occurrences": occurrences,
        "messages": list(Message.objects.values_list("pk", "recipient", "status", "provider_message_id", "metadata")),
        "received": [(m["to"], m["sid"], m["received_at"]) for m in fake_twilio.received],
    }
    assert set(fake_twilio.count_by_to()) == {c.phone for c in contacts}, story
    assert set(fake_twilio.count_by_to().values()) == {len(occurrences)}, story
