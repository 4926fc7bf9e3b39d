"""A campaign's end: once every one of its messages reached a final state, its owner gets a summary email, once.

"Final" here is deliveries.state.FINAL_STATUSES plus `sent`: a message the provider accepted but never reported on
(many SMS routes send no receipt) would otherwise hold the campaign open forever. Messages still `waiting`,
`scheduled`, `queued`, `sending` or in `review` keep it open. The summary counts `sent` apart from `delivered`.

The campaign scheduler's tick (campaigns.services.campaign_scheduler, run by the dispatcher) calls
`campaigns_complete_finished()`: a running campaign whose fan-out is done and whose messages are all done moves to
`completed` (with `completed_at`) in a conditional UPDATE (one dispatcher wins), then it queues
`campaigns.jobs.send_campaign_summary` after commit. The job claims `summary_sent_at` the same way and creates the
email in that transaction, so the owner gets exactly one, even when the job runs twice or is queued again because
Redis lost it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import django_rq
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import Job

from deliveries.models import Category, Message, Status
from deliveries.selectors import message_outcome_summary
from deliveries.services.messages import message_create, message_request_validate
from deliveries.state import FINAL_STATUSES

from ..models import Campaign

logger = logging.getLogger(__name__)

CAMPAIGN_DONE_STATUSES = frozenset({*FINAL_STATUSES, Status.SENT})
SUMMARY_JOB = "campaigns.jobs.send_campaign_summary"
SUMMARY_QUEUE = "default"
# A completed campaign without its summary this long after is queued again (Redis lost the job).
SUMMARY_REQUEUE_AFTER = timedelta(minutes=10)


def summary_job_id(campaign_id: int) -> str:
    return f"campaign-summary-{campaign_id}"


def campaigns_complete_finished(*, limit: int = 100) -> int:
    """Complete running campaigns whose fan-out is done and whose messages are all done; queue each one's summary.
    Returns how many were completed. A paused campaign stays open (its held messages are not done)."""
    messages = Message.objects.filter(campaign=OuterRef("pk"))
    finished = list(
        Campaign.objects.filter(status=Campaign.Status.RUNNING, fanout_done=True, completed_at__isnull=True)
        .exclude(Exists(messages.exclude(status__in=CAMPAIGN_DONE_STATUSES)))
        .values_list("pk", flat=True)[:limit]
    )
    completed = sum(campaign_complete(campaign_id=campaign_id) for campaign_id in finished)
    _requeue_lost_summaries()
    return completed


@transaction.atomic
def campaign_complete(*, campaign_id: int) -> bool:
    """Mark one running campaign completed if every message is done and nobody did first; queue its summary on
    commit."""
    pending = Message.objects.filter(campaign_id=campaign_id).exclude(status__in=CAMPAIGN_DONE_STATUSES)
    if pending.exists():
        return False
    now = timezone.now()
    won = Campaign.objects.filter(
        pk=campaign_id, status=Campaign.Status.RUNNING, fanout_done=True, completed_at__isnull=True
    ).update(status=Campaign.Status.COMPLETED, completed_at=now, updated_at=now)
    if won:
        transaction.on_commit(lambda: _enqueue_summary(campaign_id))
    return bool(won)


def campaign_summary_send(*, campaign_id: int) -> Message | None:
    """Email the campaign's owner its outcome, once: the message created, or None (done before, or no owner)."""
    with transaction.atomic():
        won = Campaign.objects.filter(pk=campaign_id, summary_sent_at__isnull=True).update(
            summary_sent_at=timezone.now()
        )
        if not won:
            return None
        campaign = Campaign.objects.select_related("created_by").get(pk=campaign_id)
        owner = campaign.created_by
        if owner is None or not owner.email:
            logger.info("Campaign %s completed; no owner email to send its summary to", campaign_id)
            return None
        request, content = message_request_validate(
            channel="email",
            to=owner.email,
            subject=f"Campaign “{campaign.name}” is complete",
            body=campaign_summary_text(campaign),
            category=Category.TRANSACTIONAL,
            metadata={"campaign_summary": campaign_id},
        )
        return message_create(request=request, content=content)


def campaign_summary_text(campaign: Campaign) -> str:
    summary = message_outcome_summary(Message.objects.filter(campaign=campaign))
    lines = [f"Every message of campaign “{campaign.name}” has reached its end.", "", f"Messages: {summary['total']}"]
    lines += [f"  {Status(status).label}: {count}" for status, count in summary["by_status"].items() if count]
    if summary["opened"] or summary["clicked"]:
        lines += [f"Opened: {summary['opened']}", f"Clicked: {summary['clicked']}"]
    return "\n".join(lines) + "\n"


def _enqueue_summary(campaign_id: int) -> None:
    try:
        django_rq.get_queue(SUMMARY_QUEUE).enqueue(
            SUMMARY_JOB, campaign_id, job_id=summary_job_id(campaign_id), result_ttl=600
        )
    except RedisError as error:
        logger.warning("Redis unavailable, summary of campaign %s queued again later: %s", campaign_id, error)


def _requeue_lost_summaries() -> None:
    cutoff = timezone.now() - SUMMARY_REQUEUE_AFTER
    lost = Campaign.objects.filter(completed_at__lt=cutoff, summary_sent_at__isnull=True).values_list("pk", flat=True)
    for campaign_id in lost[:100]:
        try:
            if Job.exists(summary_job_id(campaign_id), connection=django_rq.get_connection(SUMMARY_QUEUE)):
                continue
        except RedisError:
            return
        _enqueue_summary(campaign_id)
