"""A campaign's end: completed when every message is out, its owner's summary once the receipts are in (or the
settle window has passed), queued by whichever dispatcher gets there and sent exactly once."""

from datetime import timedelta

import django_rq
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services.campaign_lifecycle import campaign_launch
from campaigns.services.completion import (
    campaign_settling,
    campaign_summary_send,
    campaigns_complete_finished,
    summary_job_id,
)
from deliveries.models import Message, Status
from deliveries.state import transition
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactListFactory, MessageFactory
from tests.support import at_once, run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("owner", email="owner@example.com")


@pytest.fixture
def campaign(owner):
    return Campaign.objects.create(
        name="Spring sale", created_by=owner, status=Campaign.Status.RUNNING, fanout_done=True
    )


def summary_jobs() -> list[str]:
    return [job_id for job_id in django_rq.get_queue("default").job_ids if job_id.startswith("campaign-summary-")]


def receipt(message, status: str, **fields) -> None:
    """What a provider's status callback does to the message: sent -> delivered, undelivered or failed."""
    transition([message.pk], to_status=status, from_statuses=[Status.SENT], fields=fields)


def test_a_campaign_with_messages_on_their_way_is_not_complete(campaign):
    MessageFactory(campaign=campaign, status=Status.DELIVERED)
    MessageFactory(campaign=campaign, status=Status.WAITING)
    assert campaigns_complete_finished() == 0
    assert summary_jobs() == []


def test_a_campaign_completes_when_all_is_sent_but_its_summary_waits_for_the_receipts(campaign):
    delivered = MessageFactory(campaign=campaign, status=Status.DELIVERED)
    sent = MessageFactory(campaign=campaign, status=Status.SENT)
    MessageFactory(campaign=campaign, status=Status.FAILED)
    Campaign.objects.create(name="Still fanning out", status=Campaign.Status.RUNNING, fanout_done=False)

    assert campaigns_complete_finished() == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED and campaign.completed_at is not None
    assert campaign_settling(campaign)  # its page stays live
    assert summary_jobs() == []  # one message still has no receipt

    receipt(sent, Status.UNDELIVERED, last_error_code="30006")
    assert campaigns_complete_finished() == 0
    assert summary_jobs() == [summary_job_id(campaign.pk)]
    assert campaigns_complete_finished() == 0
    assert summary_jobs() == [summary_job_id(campaign.pk)]  # not queued twice
    run_burst_worker()
    [email] = mail.outbox
    assert "Delivered: 1\nUndelivered: 1\nFailed: 1\n" in email.body
    assert "no receipt" not in email.body
    campaign.refresh_from_db()
    assert not campaign_settling(campaign)
    assert delivered.pk  # the delivered one counted above


def test_without_receipts_the_summary_goes_when_the_settle_window_ends(campaign, settings):
    settings.CAMPAIGN_SUMMARY_SETTLE = 600
    MessageFactory(campaign=campaign, status=Status.DELIVERED)
    MessageFactory(campaign=campaign, status=Status.SENT)
    campaigns_complete_finished()
    assert summary_jobs() == []
    Campaign.objects.filter(pk=campaign.pk).update(completed_at=timezone.now() - timedelta(seconds=599))
    campaigns_complete_finished()
    assert summary_jobs() == []
    Campaign.objects.filter(pk=campaign.pk).update(completed_at=timezone.now() - timedelta(seconds=601))
    campaign.refresh_from_db()
    assert not campaign_settling(campaign)  # the page stops refreshing too
    campaigns_complete_finished()
    assert summary_jobs() == [summary_job_id(campaign.pk)]
    run_burst_worker()
    [email] = mail.outbox
    assert "Delivered: 1\n" in email.body
    assert "Sent, no receipt yet: 1 (the provider accepted them but has not reported on them 10 minutes" in email.body


def test_the_owner_gets_one_summary_email_with_the_counts_even_from_several_dispatchers(campaign):
    MessageFactory.create_batch(2, campaign=campaign, status=Status.DELIVERED)
    MessageFactory(campaign=campaign, status=Status.UNDELIVERED)
    MessageFactory(campaign=campaign, status=Status.DELIVERED, channel="email", opens_count=2, clicks_count=1)
    MessageFactory(campaign=campaign, status=Status.SUPPRESSED)

    assert sum(at_once(campaigns_complete_finished, 4)) == 1
    at_once(campaigns_complete_finished, 4)
    run_burst_worker()  # the summary job creates the email message and queues it; the same worker sends it
    summary = Message.objects.get(metadata__campaign_summary=campaign.pk)
    assert summary.status == Status.SENT
    assert summary.campaign is None
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert mail.outbox[0].subject == "Campaign “Spring sale” is complete"
    body = mail.outbox[0].body
    assert "Delivered: 3\nUndelivered: 1\nFailed: 0\nOpened: 1\nClicked: 1\nOpted out after it: 0\n" in body
    assert "Not sent, on the suppression list: 1" in body
    # The job again (a duplicate, or queued again after Redis lost it) sends nothing more.
    assert campaign_summary_send(campaign_id=campaign.pk) is None
    campaigns_complete_finished()
    assert summary_jobs() == []
    assert Message.objects.filter(metadata__campaign_summary=campaign.pk).count() == 1


def test_a_summary_lost_with_redis_is_queued_again_at_the_next_tick(campaign):
    MessageFactory(campaign=campaign, status=Status.DELIVERED)
    campaigns_complete_finished()
    assert summary_jobs() == [summary_job_id(campaign.pk)]
    django_rq.get_connection("default").flushdb()
    campaigns_complete_finished()
    assert summary_jobs() == [summary_job_id(campaign.pk)]


def test_the_summary_of_a_real_run_counts_the_receipts_the_provider_sent(owner, live_callbacks, fake_twilio):
    """The defect: four SMS sent, the campaign completed at once and the summary said 'Sent: 4'. The receipts
    come back through the webhook first; the summary then says what was delivered."""
    audience = ContactListFactory()
    make_contacts(audience, 4)
    campaign = new_campaign(audience, created_by=owner)
    campaign_launch(campaign=campaign)
    fake_twilio.configure(callback_delay=0.3)
    run_burst_worker("high", "default")
    campaigns_complete_finished()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED  # every message went out
    wait_for(
        lambda: Message.objects.filter(campaign=campaign, status=Status.DELIVERED).count() == 4,
        timeout=15,
        message="four receipts",
    )
    campaigns_complete_finished()
    run_burst_worker()
    summary = Message.objects.get(metadata__campaign_summary=campaign.pk)  # emailed through the fake Postmark
    assert summary.recipient == "owner@example.com"
    assert "Messages: 4\nDelivered: 4\n" in summary.body


def test_a_failed_summary_job_is_left_for_an_operator_not_queued_at_every_tick(campaign, owner):
    owner.email = "not an address"  # the summary's email is refused: the job fails
    owner.save()
    MessageFactory(campaign=campaign, status=Status.DELIVERED)
    campaigns_complete_finished()
    run_burst_worker()
    queue = django_rq.get_queue("default")
    assert queue.failed_job_registry.get_job_ids() == [summary_job_id(campaign.pk)]
    campaigns_complete_finished()
    assert summary_jobs() == []
