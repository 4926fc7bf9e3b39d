"""A campaign's end: completed once every message is out, summarised to its owner once the receipts are in.

Two moments. **Completed**: every message reached a final state or `sent` (deliveries.state.FINAL_STATUSES plus
`sent`: a message the provider accepted but never reported on, as many SMS routes never do, would otherwise hold
the campaign open forever); messages still `waiting`, `scheduled`, `queued`, `sending` or in `review` keep it
open. **Summarised**: the owner's email waits for the receipts, so it can say what was delivered. It goes when no
message of the campaign is still `sent` (each one delivered, undelivered or failed since), or when
CAMPAIGN_SUMMARY_SETTLE has passed since completion, whichever comes first; the summary then counts what is still
without a receipt. Until then the campaign is *settling* and its page stays live.

The campaign scheduler's tick (campaigns.services.campaign_scheduler, run by every dispatcher) calls
`campaigns_complete_finished()`: a running campaign whose fan-out is done and whose messages are all done moves to
`completed` (with `completed_at`) in a conditional UPDATE (one dispatcher wins). The same tick queues
`campaigns.jobs.send_campaign_summary` for each completed campaign whose summary is due and whose job Redis does
not hold (so a job lost with Redis is queued again at the next tick; a failed one waits in RQ's failed registry).
The job claims `summary_sent_at` with a conditional UPDATE and creates the email in that transaction, so the owner
gets exactly one, even when several dispatchers queue it or the job runs twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import django_rq
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from deliveries.models import Category, Message, Status
from deliveries.selectors import message_outcome_summary
from deliveries.services.messages import message_create, message_request_validate
from deliveries.state import FINAL_STATUSES

from ..models import Campaign
from ..selectors import campaign_engagement

logger = logging.getLogger(__name__)

CAMPAIGN_DONE_STATUSES = frozenset({*FINAL_STATUSES, Status.SENT})
SUMMARY_JOB = "campaigns.jobs.send_campaign_summary"
SUMMARY_QUEUE = "default"
# A job in one of these states will not run again: a campaign whose summary is still due is queued afresh. A failed
# job is not: it stays in RQ's failed registry for an operator to look at and requeue, rather than failing again
# at every tick.
SUMMARY_JOB_OVER = frozenset({JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED})


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
    campaigns_queue_due_summaries()
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
    return bool(won)


def summary_settle() -> timedelta:
    """How long after completion the summary waits at most for the last receipts (CAMPAIGN_SUMMARY_SETTLE)."""
    return timedelta(seconds=settings.CAMPAIGN_SUMMARY_SETTLE)


def campaign_awaits_receipts(*, campaign_id: int) -> bool:
    """Whether some message of the campaign was accepted by its provider and has no receipt yet (one probe of the
    (campaign, status) index)."""
    return Message.objects.filter(campaign_id=campaign_id, status=Status.SENT).exists()


def campaign_settling(campaign: Campaign, *, now: datetime | None = None) -> bool:
    """A completed campaign still waiting for receipts: its summary has not gone, its settle window is open and
    some of its messages have none yet. Its figures may still change, so its page keeps refreshing."""
    if campaign.status != Campaign.Status.COMPLETED or campaign.summary_sent_at or campaign.completed_at is None:
        return False
    if (now or timezone.now()) >= campaign.completed_at + summary_settle():
        return False
    return campaign_awaits_receipts(campaign_id=campaign.pk)


def campaigns_summaries_due(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Completed campaigns whose summary should go now: every receipt is in, or the settle window has passed."""
    cutoff = (now or timezone.now()) - summary_settle()
    waiting = Campaign.objects.filter(status=Campaign.Status.COMPLETED, summary_sent_at__isnull=True)
    settled = list(waiting.filter(completed_at__lte=cutoff).values_list("pk", flat=True)[:limit])
    settling = waiting.filter(completed_at__gt=cutoff).values_list("pk", flat=True)[:limit]
    return settled + [pk for pk in settling if not campaign_awaits_receipts(campaign_id=pk)]


def campaigns_queue_due_summaries() -> int:
    """Queue the summary job of each campaign whose summary is due, unless Redis already holds one that will run.
    Returns how many were queued."""
    queued = 0
    for campaign_id in campaigns_summaries_due():
        try:
            job = Job.fetch(summary_job_id(campaign_id), connection=django_rq.get_connection(SUMMARY_QUEUE))
        except NoSuchJobError:
            job = None
        except RedisError as error:
            logger.warning("Redis unavailable, campaign summaries queued at a later tick: %s", error)
            return queued
        if job is not None and job.get_status(refresh=False) not in SUMMARY_JOB_OVER:
            continue  # queued, started or deferred: it will run; failed: an operator's to requeue
        queued += _enqueue_summary(campaign_id)
    return queued


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
    """The owner's summary: what was delivered, what was not and why it may not be known, and the engagement."""
    summary = message_outcome_summary(Message.objects.filter(campaign=campaign))
    by_status = summary["by_status"]
    opted_out = campaign_engagement(campaign_id=campaign.pk)["opted_out"]
    lines = [f"Campaign “{campaign.name}” is complete: every message has gone out.", ""]
    lines += [
        f"Messages: {summary['total']}",
        f"Delivered: {by_status[Status.DELIVERED]}",
        f"Undelivered: {by_status[Status.UNDELIVERED]}",
        f"Failed: {by_status[Status.FAILED]}",
        f"Opened: {summary['opened']}",
        f"Clicked: {summary['clicked']}",
        f"Opted out after it: {opted_out}",
    ]
    if by_status[Status.SUPPRESSED]:
        lines.append(f"Not sent, on the suppression list: {by_status[Status.SUPPRESSED]}")
    if by_status[Status.CANCELLED]:
        lines.append(f"Cancelled: {by_status[Status.CANCELLED]}")
    if by_status[Status.SENT]:
        lines += [
            "",
            f"Sent, no receipt yet: {by_status[Status.SENT]} (the provider accepted them but has not reported on "
            f"them {_duration(summary_settle())} after the last one went; some routes never do).",
        ]
    return "\n".join(lines) + "\n"


def _duration(span: timedelta) -> str:
    minutes = round(span.total_seconds() / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else f"{round(span.total_seconds())} s"


def _enqueue_summary(campaign_id: int) -> int:
    try:
        django_rq.get_queue(SUMMARY_QUEUE).enqueue(
            SUMMARY_JOB, campaign_id, job_id=summary_job_id(campaign_id), result_ttl=600
        )
    except RedisError as error:
        logger.warning("Redis unavailable, summary of campaign %s queued at a later tick: %s", campaign_id, error)
        return 0
    return 1
