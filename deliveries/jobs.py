"""RQ jobs. Each takes ids, loads, and calls one service; all the logic is in deliveries.services."""

import time

from django.conf import settings
from rq import get_current_job
from rq.queue import Queue

from .services import dispatch, sending

# How much later than the dispatcher's lookahead a job may still be early and wait in the worker. Later than
# that (a job rebuilt long before its time, clocks apart), its messages go back to the dispatcher instead.
EARLY_WAIT_MARGIN_SECONDS = 1.0


def send_messages(message_ids: list[int], not_before: float | None = None) -> dict[str, int]:
    """Send a batch of queued messages. Safe to run twice: only rows still `queued` are sent.

    `not_before` (epoch seconds) comes with messages claimed ahead of their `send_at`: nothing is sent before it.
    They stay `queued`, so cancellable, while the job waits.
    """
    if not_before is not None:
        early = not_before - time.time()
        if early > settings.DISPATCH_LOOKAHEAD + EARLY_WAIT_MARGIN_SECONDS:
            dispatch.messages_return_early(message_ids)
            return sending.send_messages(message_ids)  # those still queued: none, unless another job re-queued them
        if early > 0:
            time.sleep(early)
    job = get_current_job()
    if job is None:
        return sending.send_messages(message_ids)
    # The send jobs waiting behind this one are taken over: first to fill this one up to SEND_BATCH_SIZE (the
    # API queues a job per message), then a job at a time as its calls finish (dispatch.WaitingSendJobs).
    waiting = dispatch.WaitingSendJobs(Queue(job.origin, connection=job.connection))
    message_ids = [*message_ids, *waiting.take(limit=settings.SEND_BATCH_SIZE - len(message_ids))]
    return sending.send_messages(message_ids, more=waiting.more)
