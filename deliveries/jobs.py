"""RQ jobs. Each takes ids, loads, and calls one service; all the logic is in the services and the send path."""

import time

from django.conf import settings
from rq import get_current_job
from rq.job import Job

from messaging_project.log_context import log_context

from .job_source import JobSource
from .sending.job import send_messages as send_job_messages
from .services.dispatch import messages_return_early

# How much later than the dispatcher's lookahead a job may still be early and wait in the worker. Later than
# that (a job rebuilt long before its time, clocks apart), its messages go back to the dispatcher instead.
EARLY_WAIT_MARGIN_SECONDS = 1.0


def send_messages(message_ids: list[int], not_before: float | None = None) -> dict[str, int]:
    """Send a batch of queued messages. Safe to run twice: only rows still `queued` are sent.

    `not_before` (epoch seconds) comes with messages claimed ahead of their `send_at`: nothing is sent before it.
    They stay `queued`, so cancellable, while the job waits (in the send path, once ready to send).
    """
    job = get_current_job()
    with log_context(job_id=job.id if job is not None else None):
        return _send_messages(message_ids, job, not_before)


def _send_messages(message_ids: list[int], job: Job | None, not_before: float | None) -> dict[str, int]:
    if not_before is not None and not_before - time.time() > settings.DISPATCH_LOOKAHEAD + EARLY_WAIT_MARGIN_SECONDS:
        messages_return_early(message_ids)
        return send_job_messages(message_ids)  # those still queued: none, unless another job re-queued them
    if job is None:
        return send_job_messages(message_ids, not_before=not_before)
    # The send jobs waiting behind this one are taken over: first to fill this one up to SEND_BATCH_SIZE (the
    # API queues a job per message), then a job at a time as its calls finish. Held ones are taken only once
    # due, so those taken now are due before this one's `not_before`.
    source = JobSource.of_job(job)
    message_ids = [*message_ids, *source.adopt(limit=settings.SEND_BATCH_SIZE - len(message_ids))]
    return send_job_messages(message_ids, source=source, not_before=not_before)
