"""Where a running send job gets more messages: the send jobs still waiting behind it in its queue, taken over.

The API queues each message it accepts as a job of its own, and a worker forks a process per job: with one message
a job, two workers sent 14 messages a second, whatever the provider would take. So a job first fills itself up to
SEND_BATCH_SIZE from the jobs waiting behind it (`JobSource.adopt`), then, while its last calls are in flight,
takes one job or a call pool's worth at a time (`JobSource.next_batch`), so that a worker's call slots stay full
from one batch to the next instead of draining and waiting for a new work horse.

Taking a job removes it from the queue and deletes it in one step (a Lua script), against workers dequeuing it at
the same moment: whoever takes it first sends it. If this process dies before sending them, the rows are still
`queued` with no job alive, and the reconciler re-queues them as after any lost job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

from django.conf import settings
from redis.exceptions import RedisError
from rq.job import Job
from rq.queue import Queue

from .services.dispatch import PRIORITY_ORDER, SEND_JOB

logger = logging.getLogger(__name__)

# A running send job waits this long at most for a held job (`not_before`) in its queue to become due.
HELD_JOB_WAIT_SECONDS = 1.0

# Takes each job (ARGV) out of the queue's list (KEYS[1]) and deletes its hash (KEYS[1 + i]), if it is still in the
# list: atomically, so a job is either still waiting for any worker or gone with its messages in the taker's hands.
# A waiting job is in no registry, only in the list (Job.delete would also look for executions and groups).
_TAKE_JOBS = """
local taken = {}
for i, job_id in ipairs(ARGV) do
    if redis.call('LREM', KEYS[1], 1, job_id) == 1 then
        redis.call('DEL', KEYS[1 + i])
        taken[#taken + 1] = job_id
    end
end
return taken
"""


class NextBatch(NamedTuple):
    """What `JobSource.next_batch()` found: messages taken over now, or when to ask again, or that none will come."""

    message_ids: list[int]
    # With no messages now: the epoch second a held job in the queue comes due (ask again then); None if none.
    ask_again_at: float | None = None
    # False once nothing more is to be taken (the time is up, a higher priority waits, the queue is empty).
    more_may_come: bool = True


NOTHING_MORE = NextBatch([], more_may_come=False)


class JobSource:
    """The plain send jobs waiting in a running send job's queue, for it to take over.

    It stops giving after SEND_JOB_TAKE_OVER_SECONDS (the job must end well within RQ's job timeout), and whenever
    a queue the worker serves first (a higher priority) has jobs waiting, so those are never kept behind this
    queue's backlog. A job the dispatcher pushed ahead of its time (`not_before`) is taken only once due.
    """

    # Looks at the queue when another worker got the jobs chosen first (beyond that, the waiting jobs are not
    # ours to take: held for later, or not send jobs).
    TRIES = 3

    def __init__(self, queue: Queue):
        self.queue = queue
        self.until = time.monotonic() + settings.SEND_JOB_TAKE_OVER_SECONDS
        rank = PRIORITY_ORDER.get(queue.name)
        self.queues_first = [name for name, other in PRIORITY_ORDER.items() if rank is not None and other < rank]

    @classmethod
    def of_job(cls, job: Job) -> JobSource:
        """The source behind a running RQ job: the queue it came from."""
        return cls(Queue(job.origin, connection=job.connection))

    def adopt(self, limit: int) -> list[int]:
        """Take over waiting send jobs up to `limit` messages in all, at a job's start (send_jobs_adopt)."""
        return send_jobs_adopt(self.queue, limit=limit)

    def next_batch(self) -> NextBatch:
        """Take over one job, or the jobs that fill the call slots (SEND_CONCURRENCY messages), now.

        A held job due within HELD_JOB_WAIT_SECONDS is not taken early: the answer is to ask again at its time,
        so a burst due over the next second goes out through the work horses already running."""
        if time.monotonic() >= self.until or self._jobs_wait_first():
            return NOTHING_MORE
        for _ in range(self.TRIES):
            # About what the free call slots take: a worker taking a whole backlog at once would leave the
            # others idle while it sends it alone (at least one job, whatever its size).
            taken, next_held = _send_jobs_take(self.queue, limit=settings.SEND_CONCURRENCY, at_least_one=True)
            if taken:
                return NextBatch(taken)
            if next_held is not None:
                if next_held - time.time() <= HELD_JOB_WAIT_SECONDS:
                    return NextBatch([], ask_again_at=next_held)
                return NOTHING_MORE
            # Nothing taken while jobs still wait: another worker dequeued the ones we chose. Look again.
            if not self._jobs_waiting():
                break
        return NOTHING_MORE

    def _jobs_waiting(self) -> bool:
        try:
            return self.queue.count > 0
        except RedisError:
            return False

    def _jobs_wait_first(self) -> bool:
        if not self.queues_first:
            return False
        try:
            with self.queue.connection.pipeline(transaction=False) as pipe:
                for name in self.queues_first:
                    pipe.llen(Queue(name, connection=self.queue.connection).key)
                return any(pipe.execute())
        except RedisError:
            return True  # take nothing more: the job ends, and the worker dequeues in its own order


def send_jobs_adopt(queue: Queue, *, limit: int) -> list[int]:
    """Take over send jobs still waiting in `queue`, up to `limit` messages in all, and return their message ids.

    With no backlog a message still goes at once, alone; with one, the backlog goes out in batches. A job held for
    a later time (`not_before`) is taken only once that time has come.
    """
    return _send_jobs_take(queue, limit=limit).message_ids


class _Taken(NamedTuple):
    message_ids: list[int]
    # The earliest `not_before` of the held send jobs passed over (epoch seconds), if any.
    next_held: float | None = None


def _send_jobs_take(queue: Queue, *, limit: int, at_least_one: bool = False) -> _Taken:
    """As send_jobs_adopt; with `at_least_one`, the first job that can be taken is, however big."""
    if limit <= 0:
        return _Taken([])
    try:
        waiting = [job for job in Job.fetch_many(queue.get_job_ids(0, limit), queue.connection) if job is not None]
        chosen: dict[str, tuple[Job, list[int]]] = {}
        count = 0
        next_held = None
        now = time.time()
        for job in waiting:
            if job.func_name != SEND_JOB:
                continue
            not_before = job.kwargs.get("not_before")
            if not_before is not None and not_before > now:
                next_held = min(not_before, next_held or not_before)
                continue
            ids = list(job.args[0])
            if count + len(ids) > limit and not (at_least_one and not chosen):
                break
            chosen[job.id] = (job, ids)
            count += len(ids)
        taken = jobs_take(queue, [job for job, _ in chosen.values()])
    except RedisError as error:  # nothing was taken: the jobs wait for their workers
        logger.warning("Could not take over waiting send jobs: %s", error)
        return _Taken([])
    return _Taken([pk for job_id in taken for pk in chosen[job_id][1]], next_held)


def jobs_take(queue: Queue, jobs: Sequence[Job]) -> list[str]:
    """Remove these jobs from the queue and delete them, each only if it is still waiting in the queue's list;
    returns the ids of those taken (see _TAKE_JOBS)."""
    if not jobs:
        return []
    take = queue.connection.register_script(_TAKE_JOBS)
    taken = take(keys=[queue.key, *(job.key for job in jobs)], args=[job.id for job in jobs])
    return [job_id.decode() if isinstance(job_id, bytes) else job_id for job_id in taken]
