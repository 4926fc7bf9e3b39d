"""Getting messages from the database onto the Redis queues, and back again when Redis forgot them.

The database row is the truth. A job only carries message ids, and every job is safe to run twice: a worker
claims rows with a conditional UPDATE (queued -> sending), so a duplicate job finds nothing left to send.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta

import django_rq
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import Job, JobStatus
from rq.queue import Queue

from ..models import Message, Priority, Status
from ..state import transition, update_returning_ids

logger = logging.getLogger(__name__)

SEND_JOB = "deliveries.jobs.send_messages"
# A job in one of these will still run. A started job claims its messages as it reaches them, so a message still
# `queued` long after its job started belongs to a worker that died (RQ itself notices only minutes later).
WAITING_JOB_STATUSES = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# One Queue (so one Redis connection pool) per queue configuration, kept for the life of the process: a new one
# per push would open a connection (HELLO, CLIENT SETINFO, SELECT) and ask RQ's INFO each time, six round trips.
_send_queues: dict[tuple[str, str], Queue] = {}


def send_queue(priority: str) -> Queue:
    """The RQ queue for a priority, reused across pushes. Keyed by its settings, which tests may override."""
    cache_key = (priority, repr(sorted(settings.RQ_QUEUES[priority].items())))
    queue = _send_queues.get(cache_key)
    if queue is None:
        queue = _send_queues[cache_key] = django_rq.get_queue(priority)
    return queue


def new_job_id() -> str:
    return f"send-{uuid.uuid4().hex}"


def batches(ids: Sequence[int], size: int | None = None) -> Iterable[list[int]]:
    size = size or settings.SEND_BATCH_SIZE
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def enqueue_jobs(jobs: dict[str, list[tuple[str, list[int]]]]) -> int:
    """Push send jobs to Redis in one pipeline per queue. `jobs` maps a priority to (job_id, message_ids) pairs.

    Returns how many jobs were pushed. A Redis error is logged, not raised: the rows stay `queued` and the
    reconciler re-queues them once Redis answers again.
    """
    pushed = 0
    for priority, pairs in jobs.items():
        if not pairs:
            continue
        queue = send_queue(priority)
        data = [Queue.prepare_data(SEND_JOB, args=(ids,), job_id=job_id, result_ttl=600) for job_id, ids in pairs]
        try:
            with queue.connection.pipeline() as pipe:
                queue.enqueue_many(data, pipeline=pipe)
                pipe.execute()
            pushed += len(data)
        except RedisError as error:
            logger.warning("Redis unavailable, %s send job(s) left for the reconciler: %s", len(data), error)
    return pushed


def enqueue_messages_on_commit(messages: Iterable[Message]) -> None:
    """After the current transaction commits, queue send jobs for these (already queued) messages."""
    by_job: dict[tuple[str, str], list[int]] = defaultdict(list)
    for message in messages:
        by_job[(message.priority, message.job_id)].append(message.pk)

    def push() -> None:
        jobs: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
        for (priority, job_id), ids in by_job.items():
            jobs[priority].append((job_id, ids))
        enqueue_jobs(jobs)

    transaction.on_commit(push)


def _queue_rows(rows, *, from_status: str, detail: str) -> dict[str, list[tuple[str, list[int]]]]:
    """Claim `rows` for new jobs, batch by batch, and return the jobs to push. Safe against racing dispatchers."""
    now = timezone.now()
    jobs: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
    by_priority: dict[str, list[int]] = defaultdict(list)
    for pk, priority in rows:
        by_priority[priority].append(pk)
    for priority, ids in by_priority.items():
        for chunk in batches(ids):
            job_id = new_job_id()
            if from_status == Status.SCHEDULED:
                claimed = transition(
                    chunk,
                    to_status=Status.QUEUED,
                    from_statuses=[Status.SCHEDULED],
                    fields={"job_id": job_id, "queued_at": now},
                    detail=detail,
                )
            else:
                # Re-queueing a queued message is not a status change, only a new job: no event needed.
                claimed = update_returning_ids(
                    Message.objects.filter(pk__in=chunk, status=Status.QUEUED),
                    {"job_id": job_id, "queued_at": now, "updated_at": now},
                )
            if claimed:
                jobs[priority].append((job_id, claimed))
    return jobs


def dispatch_allowance(channel: str) -> int | None:
    """How many more messages of a channel may go to the queues now; None for no cap.

    With a send rate or a paused provider, releasing every due message would only have the workers defer most of
    them again; this releases what the provider can take now, less what is already queued for it.
    """
    from ..backends import provider_for
    from .sending import ProviderGate

    try:
        capacity = ProviderGate(channel, provider_for(channel)).capacity()
    except Exception as error:  # Redis down or a misconfigured backend: let the workers decide and say why
        logger.debug("No dispatch allowance for %s: %s", channel, error)
        return None
    if capacity is None:
        return None
    return max(capacity - Message.objects.filter(status=Status.QUEUED, channel=channel).count(), 0)


def dispatch_due_messages(*, limit: int = 5000) -> int:
    """Move scheduled messages whose time has come to the queues. Returns how many were queued.

    Several dispatchers may run at once: each row moves scheduled -> queued in exactly one of them. A channel
    whose provider is rate limited or paused gets only what it can send now (see dispatch_allowance).
    """
    now = timezone.now()
    order = {Priority.HIGH: 0, Priority.DEFAULT: 1, Priority.LOW: 2}
    due = list(
        Message.objects.filter(status=Status.SCHEDULED, send_at__lte=now)
        .order_by("send_at", "pk")
        .values_list("pk", "priority", "channel")[:limit]
    )
    if not due:
        return 0
    allowances = {channel: dispatch_allowance(channel) for channel in {row[2] for row in due}}
    rows = []
    for pk, priority, channel in due:
        allowance = allowances[channel]
        if allowance is not None:
            if allowance <= 0:
                continue
            allowances[channel] = allowance - 1
        rows.append((pk, priority))
    if not rows:
        return 0
    rows.sort(key=lambda row: order.get(row[1], 1))
    jobs = _queue_rows(rows, from_status=Status.SCHEDULED, detail="Due: handed to the queue.")
    enqueue_jobs(jobs)
    return sum(len(ids) for pairs in jobs.values() for _, ids in pairs)


def requeue_orphaned_messages(*, older_than: int | None = None, limit: int = 20000) -> int:
    """Find queued messages without a live job and queue them again: Redis lost the job (flushed, restarted),
    it finished without them, or the worker running it died. Returns how many were re-queued.

    Safe to run in several places at once, and safe when wrong: a message re-queued while its old job still runs
    is claimed by exactly one of the two jobs.
    """
    older_than = settings.RECONCILE_AFTER if older_than is None else older_than
    cutoff = timezone.now() - timedelta(seconds=older_than)
    rows = list(
        Message.objects.filter(status=Status.QUEUED, queued_at__lte=cutoff)
        .order_by("queued_at", "pk")
        .values_list("pk", "priority", "job_id")[:limit]
    )
    if not rows:
        return 0
    connection = django_rq.get_connection("default")
    job_ids = sorted({job_id for _, _, job_id in rows if job_id})
    try:
        jobs = Job.fetch_many(job_ids, connection=connection) if job_ids else []
    except RedisError as error:
        logger.warning("Redis unavailable, cannot reconcile queued messages yet: %s", error)
        return 0
    alive = {job.id for job in jobs if job is not None and job.get_status(refresh=False) in WAITING_JOB_STATUSES}
    orphans = [(pk, priority) for pk, priority, job_id in rows if job_id not in alive]
    if not orphans:
        return 0
    new_jobs = _queue_rows(orphans, from_status=Status.QUEUED, detail="")
    enqueue_jobs(new_jobs)
    count = sum(len(ids) for pairs in new_jobs.values() for _, ids in pairs)
    logger.info("Re-queued %s message(s) whose job was missing from Redis", count)
    return count
