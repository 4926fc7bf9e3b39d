"""A campaign's end: the owner's summary email, queued once when every message is done, sent once."""

from datetime import timedelta

import django_rq
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services.completion import (
    campaign_summary_send,
    campaigns_complete_finished,
    summary_job_id,
)
from deliveries.models import Message, Status
from tests.factories import MessageFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def campaign():
    owner = get_user_model().objects.create_user("owner", email="owner@example.com")
    return Campaign.objects.create(
        name="Spring sale", created_by=owner, status=Campaign.Status.RUNNING, fanout_done=True
    )


def summary_jobs() -> list[str]:
    return [job_id for job_id in django_rq.get_queue("default").job_ids if job_id.startswith("campaign-summary-")]


def test_a_campaign_with_messages_on_their_way_is_not_complete(campaign):
    MessageFactory(campaign=campaign, status=Status.DELIVERED)
    MessageFactory(campaign=campaign, status=Status.WAITING)
    assert campaigns_complete_finished() == 0
    assert summary_jobs() == []


def test_completion_queues_the_summary_job_exactly_once(campaign):
    MessageFactory(campaign=campaign, status=Status.DELIVERED)
    MessageFactory(campaign=campaign, status=Status.SENT)
    MessageFactory(campaign=campaign, status=Status.FAILED)
    Campaign.objects.create(name="Still fanning out", status=Campaign.Status.RUNNING, fanout_done=False)
    assert campaigns_complete_finished() == 1
    assert campaigns_complete_finished() == 0
    assert summary_jobs() == [summary_job_id(campaign.pk)]
    campaign.refresh_from_db()
    assert campaign.completed_at is not None
    assert campaign.status == Campaign.Status.COMPLETED


def test_the_owner_gets_one_summary_email_with_the_counts(campaign, settings):
    MessageFactory.create_batch(2, campaign=campaign, status=Status.DELIVERED)
    MessageFactory(campaign=campaign, status=Status.UNDELIVERED)
    campaigns_complete_finished()
    run_burst_worker()  # the summary job creates the email message and queues it; the same worker sends it
    summary = Message.objects.get(metadata__campaign_summary=campaign.pk)
    assert summary.status == Status.SENT
    assert summary.campaign is None
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert mail.outbox[0].subject == "Campaign “Spring sale” is complete"
    assert "Delivered: 2" in mail.outbox[0].body
    assert "Undelivered: 1" in mail.outbox[0].body
    # The job again (a duplicate, or queued again after Redis lost it) sends nothing more.
    assert campaign_summary_send(campaign_id=campaign.pk) is None
    assert Message.objects.filter(metadata__campaign_summary=campaign.pk).count() == 1


def test_a_summary_lost_with_redis_is_queued_again(campaign):
    MessageFactory(campaign=campaign, status=Status.DELIVERED)
    campaigns_complete_finished()
    django_rq.get_connection("default").flushdb()
    Campaign.objects.filter(pk=campaign.pk).update(completed_at=timezone.now() - timedelta(hours=1))
    campaigns_complete_finished()
    assert summary_jobs() == [summary_job_id(campaign.pk)]
