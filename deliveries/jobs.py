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
        elif early > 0:
            time.sleep(early)
    else:
        job = get_current_job()
        if job is not None:  # a small job sends the waiting small jobs' messages too (dispatch.send_jobs_adopt)
            queue = Queue(job.origin, connection=job.connection)
            message_ids = [
                *message_ids,
                *dispatch.send_jobs_adopt(queue, limit=settings.SEND_BATCH_SIZE - len(message_ids)),
            ]
    return sending.send_messages(message_ids)
