"""Getting messages from the database onto the Redis queues, and back again when Redis forgot them.

The database row is the truth. A job only carries message ids, and every job is safe to run twice: a worker
claims rows with a conditional UPDATE (queued -> sending), so a duplicate job finds nothing left to send.

Scheduled messages can be claimed (scheduled -> queued) a little before their `send_at` (the dispatcher's
lookahead), so that the database work is done by the time they are due. Their job carries `not_before`, the
latest `send_at` among its messages: the dispatcher holds it (HeldJobs) and pushes it when that time comes, and
the job itself waits if it still arrives early (deliveries.jobs). Until a worker claims them for the provider
call they are plain `queued` rows: cancellable, and rebuilt by the reconciler if the job is lost.
"""

from __future__ import annotations

import heapq
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import django_rq
from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import Job, JobStatus
from rq.queue import EnqueueData, Queue

from ..backends import provider_for
from ..circuit_breakers import ProviderBreaker
from ..db.lookups import pk_among
from ..db.updates import update_returning_ids
from ..models import Message, Priority, Status
from ..rate_limits import SendRateLimiter
from ..state import transition

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


# A job claimed ahead of time holds messages whose send_at lie at most this far apart: it goes when the last of
# them is due, so the first may go this much late.
JOB_SPAN_SECONDS = 0.05


class SendJob(NamedTuple):
    """One send job: its id, its message ids, and the epoch second before which none of them may be sent."""

    job_id: str
    message_ids: list[int]
    not_before: float | None = None


def new_job_id() -> str:
    return f"send-{uuid.uuid4().hex}"


def batches(ids: Sequence[int], size: int | None = None) -> Iterable[list[int]]:
    size = size or settings.SEND_BATCH_SIZE
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def enqueue_jobs(jobs: Mapping[str, Sequence[SendJob | tuple[str, list[int]]]]) -> int:
    """Push send jobs to Redis in one pipeline per queue. `jobs` maps a priority to SendJobs or (job_id, ids) pairs.

    Returns how many jobs were pushed. A Redis error is logged, not raised: the rows stay `queued` and the
    reconciler re-queues them once Redis answers again.
    """
    pushed = 0
    for priority, pairs in jobs.items():
        if not pairs:
            continue
        queue = send_queue(priority)
        data = [_job_data(SendJob(*pair)) for pair in pairs]
        try:
            with queue.connection.pipeline() as pipe:
                queue.enqueue_many(data, pipeline=pipe)
                pipe.execute()
            pushed += len(data)
        except RedisError as error:
            logger.warning("Redis unavailable, %s send job(s) left for the reconciler: %s", len(data), error)
    return pushed


def _job_data(job: SendJob) -> EnqueueData:
    # Only a job that may arrive early carries not_before, so a plain job reads `send_messages([ids])` as ever.
    kwargs = {"not_before": job.not_before} if job.not_before is not None else None
    return Queue.prepare_data(SEND_JOB, args=(job.message_ids,), kwargs=kwargs, job_id=job.job_id, result_ttl=600)


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


PRIORITY_ORDER: dict[str, int] = {Priority.HIGH: 0, Priority.DEFAULT: 1, Priority.LOW: 2}


class _PlannedJob(NamedTuple):
    priority: str
    message_ids: list[int]
    not_before: float | None


# A job held for its time carries at most this many workers' call slots' worth of messages (SEND_CONCURRENCY each).
HELD_JOB_SLOTS = 2


def _plan_jobs(rows: Iterable[tuple[int, str, datetime | None]], *, now: datetime) -> list[_PlannedJob]:
    """Cut rows (pk, priority, send_at) into jobs of at most SEND_BATCH_SIZE messages of one priority.

    Messages already due share jobs without `not_before`; the others share a job only with messages due within
    JOB_SPAN_SECONDS of each other. Jobs come due ones first (high priority first), then by `not_before`.
    """
    size = settings.SEND_BATCH_SIZE
    # A job held for its time goes out with the others due then, on every worker at once: in smaller jobs, the
    # workers share a burst to its end instead of one sending the last big job alone (they take each other's
    # jobs over without a fork: deliveries.job_source).
    held_size = min(size, HELD_JOB_SLOTS * settings.SEND_CONCURRENCY)
    timed = [
        (pk, priority, send_at.timestamp() if send_at is not None and send_at > now else None)
        for pk, priority, send_at in rows
    ]
    timed.sort(key=lambda row: row[2] or 0.0)  # stable: due rows keep the caller's order
    planned: list[tuple[str, list[int], float | None, float | None]] = []
    open_by_priority: dict[str, int] = {}
    for pk, priority, at in timed:
        index = open_by_priority.get(priority)
        if index is not None:
            _, ids, first, _ = planned[index]
            same_kind = (first is None) == (at is None)
            full = len(ids) >= (size if at is None else held_size)
            if not full and same_kind and (at is None or (first is not None and at - first <= JOB_SPAN_SECONDS)):
                ids.append(pk)
                planned[index] = (priority, ids, first, at)
                continue
        open_by_priority[priority] = len(planned)
        planned.append((priority, [pk], at, at))
    jobs = [_PlannedJob(priority, ids, last) for priority, ids, _, last in planned]
    jobs.sort(key=lambda job: (job.not_before is not None, job.not_before or 0.0, PRIORITY_ORDER.get(job.priority, 1)))
    return jobs


def _claim_jobs(
    planned: Iterable[_PlannedJob], *, from_status: str, detail: str, now: datetime
) -> Iterator[tuple[str, SendJob]]:
    """Claim each planned job's rows for a new job id, one conditional UPDATE each, and yield the jobs to push.

    Safe against racing dispatchers: a row goes to exactly one job, and a job without rows is not yielded.
    """
    for priority, ids, not_before in planned:
        job_id = new_job_id()
        if from_status == Status.SCHEDULED:
            claimed = transition(
                ids,
                to_status=Status.QUEUED,
                from_statuses=[Status.SCHEDULED],
                fields={"job_id": job_id, "queued_at": now},
                detail=detail if not_before is None else "Due shortly: handed to the queue, to go at its time.",
            )
        else:
            # Re-queueing a queued message is not a status change, only a new job: no event needed.
            claimed = update_returning_ids(
                Message.objects.filter(pk_among(ids, status=Status.QUEUED)),
                {"job_id": job_id, "queued_at": now, "updated_at": now},
            )
        if claimed:
            yield priority, SendJob(job_id, claimed, not_before)


def _queue_rows(
    rows: Iterable[tuple[int, str, datetime | None]], *, from_status: str, detail: str
) -> dict[str, list[SendJob]]:
    """Claim `rows` (pk, priority, send_at) for new jobs and return the jobs to push, by priority."""
    now = timezone.now()
    jobs: dict[str, list[SendJob]] = defaultdict(list)
    for priority, job in _claim_jobs(_plan_jobs(rows, now=now), from_status=from_status, detail=detail, now=now):
        jobs[priority].append(job)
    return jobs


def dispatch_allowance(channel: str) -> int | None:
    """How many more messages of a channel may go to the queues now; None for no cap.

    With a send rate or a paused provider, releasing every due message would only have the workers defer most of
    them again; this releases what the provider can take now, less what is already queued for it.
    """
    try:
        capacity = provider_capacity(channel)
    except Exception as error:  # Redis down or a misconfigured backend: let the workers decide and say why
        logger.debug("No dispatch allowance for %s: %s", channel, error)
        return None
    if capacity is None:
        return None
    return max(capacity - Message.objects.filter(status=Status.QUEUED, channel=channel).count(), 0)


def provider_capacity(channel: str) -> int | None:
    """How many calls to a channel's provider may start now (None: no limit), as the workers' provider gate will
    see it: none while its breaker pauses it, one for the breaker's probe, else what its send rate leaves."""
    provider = provider_for(channel)
    status = ProviderBreaker(provider).status()
    if status.state == "open" and status.retry_at is not None and time.time() < status.retry_at:
        return 0
    if status.state in ("open", "half-open"):
        return 1
    return SendRateLimiter(channel, provider).capacity()


class HeldJobs:
    """Send jobs claimed ahead of their messages' time, held in the dispatcher's memory until then.

    Each goes to Redis `lead` seconds before its `not_before`, so that a worker already has it in hand when its
    messages are due (the job waits out the rest, deliveries.jobs). Kept out of Redis until then, they never hold
    a worker for long, and a Redis flush meanwhile cannot lose them. If the dispatcher dies holding jobs, their
    messages are `queued` rows whose job Redis never saw: the reconciler queues them again.
    """

    def __init__(self, *, lead: float = 0.0):
        self.lead = lead
        self._heap: list[tuple[float, int, str, SendJob]] = []
        self._added = 0  # tie-breaker, so the heap never compares jobs

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, priority: str, job: SendJob) -> None:
        self._added += 1
        heapq.heappush(self._heap, ((job.not_before or 0.0) - self.lead, self._added, priority, job))

    def next_push_at(self) -> float | None:
        """The epoch second at which the next held job goes to Redis, None if none is held."""
        return self._heap[0][0] if self._heap else None

    def push_due(self, now: float | None = None) -> int:
        """Push every job whose time has come, in one pipeline per queue. Returns how many messages went."""
        now = time.time() if now is None else now
        jobs: dict[str, list[SendJob]] = defaultdict(list)
        while self._heap and self._heap[0][0] <= now:
            _, _, priority, job = heapq.heappop(self._heap)
            jobs[priority].append(job)
        if not jobs:
            return 0
        enqueue_jobs(jobs)
        return sum(len(job.message_ids) for pairs in jobs.values() for job in pairs)

    def push_all(self) -> int:
        """Push every held job now (the dispatcher is stopping); each job still waits for its time."""
        return self.push_due(now=float("inf"))


def dispatch_due_messages(*, limit: int = 5000, lookahead: float = 0.0, held: HeldJobs | None = None) -> int:
    """Move scheduled messages whose time has come to the queues. Returns how many were queued.

    With a `lookahead`, messages due within that many seconds are claimed too; their jobs carry `not_before`
    and go to `held` until then (or straight to Redis without `held`, where the job waits for its time). Due
    messages go to Redis job by job as they are claimed, so workers start on the first while the rest are claimed.

    Several dispatchers may run at once: each row moves scheduled -> queued in exactly one of them. A channel
    whose provider is rate limited or paused gets only what it can send now (see dispatch_allowance).
    """
    now = timezone.now()
    due = list(
        Message.objects.filter(status=Status.SCHEDULED, send_at__lte=now + timedelta(seconds=max(lookahead, 0.0)))
        .order_by("send_at", "pk")
        .values_list("pk", "priority", "channel", "send_at")[:limit]
    )
    if not due:
        return 0
    allowances = {channel: dispatch_allowance(channel) for channel in {row[2] for row in due}}
    rows = []
    for pk, priority, channel, send_at in due:
        allowance = allowances[channel]
        if allowance is not None:
            if allowance <= 0:
                continue
            allowances[channel] = allowance - 1
        rows.append((pk, priority, send_at))
    dispatched = 0
    planned = _plan_jobs(rows, now=now)
    detail = "Due: handed to the queue."
    for priority, job in _claim_jobs(planned, from_status=Status.SCHEDULED, detail=detail, now=now):
        dispatched += len(job.message_ids)
        if job.not_before is not None and held is not None:
            held.add(priority, job)
            held.push_due()  # a long pass must not make the jobs held earlier late
        else:
            enqueue_jobs({priority: [job]})
    return dispatched


def next_send_at() -> datetime | None:
    """When the earliest scheduled message is due, so the dispatcher can sleep until then (one indexed query)."""
    earliest: datetime | None = Message.objects.filter(status=Status.SCHEDULED).aggregate(at=Min("send_at"))["at"]
    return earliest


def messages_return_early(message_ids: Sequence[int]) -> int:
    """Give queued messages whose `send_at` is still ahead back to `scheduled`; the dispatcher queues them again
    in time. For a job that reached a worker too early to wait for (see deliveries.jobs). Returns how many."""
    return len(
        transition(
            message_ids,
            to_status=Status.SCHEDULED,
            from_statuses=[Status.QUEUED],
            extra_filter={"send_at__gt": timezone.now()},
            detail="Reached a worker long before its time: back to scheduled until then.",
        )
    )


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
        .values_list("pk", "priority", "job_id", "send_at")[:limit]
    )
    if not rows:
        return 0
    connection = django_rq.get_connection("default")
    job_ids = sorted({job_id for _, _, job_id, _ in rows if job_id})
    try:
        jobs = Job.fetch_many(job_ids, connection=connection) if job_ids else []
    except RedisError as error:
        logger.warning("Redis unavailable, cannot reconcile queued messages yet: %s", error)
        return 0
    alive = {job.id for job in jobs if job is not None and job.get_status(refresh=False) in WAITING_JOB_STATUSES}
    # A message not yet due (claimed ahead of its time) gets a job that waits for it, like the dispatcher's.
    orphans = [(pk, priority, send_at) for pk, priority, job_id, send_at in rows if job_id not in alive]
    if not orphans:
        return 0
    new_jobs = _queue_rows(orphans, from_status=Status.QUEUED, detail="")
    enqueue_jobs(new_jobs)
    count = sum(len(job.message_ids) for jobs in new_jobs.values() for job in jobs)
    logger.info("Re-queued %s message(s) whose job was missing from Redis", count)
    return count
