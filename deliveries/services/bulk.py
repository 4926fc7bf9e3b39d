"""Creating many messages at once: bulk inserts in chunks, one Redis pipeline per chunk, bounded memory.

The batch API, `send_bulk` and campaign fan-out all come through here, so 100,000 recipients never mean
100,000 INSERTs or 100,000 Redis round trips.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.services import RenderedContent

from ..models import ApiKey, Message, MessageEvent, Status
from .dispatch import enqueue_jobs, new_job_id
from .messages import MessageRequest


@dataclass
class BulkResult:
    created: int = 0
    queued: int = 0
    scheduled: int = 0
    first_id: int | None = None
    last_id: int | None = None


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def messages_create_many(
    *,
    items: Iterable[tuple[MessageRequest, RenderedContent]],
    created_by=None,
    api_key: ApiKey | None = None,
    campaign=None,
    chunk_size: int = 2000,
    on_chunk=None,
) -> BulkResult:
    """Store validated messages in chunks of `chunk_size`, each in its own transaction, queueing each chunk's due
    messages after it commits. `items` may be a generator: at most one chunk is held in memory.

    `on_chunk(created_so_far)` is called after each chunk, for progress bars.
    """
    result = BulkResult()
    for chunk in _chunks(items, chunk_size):
        _create_chunk(chunk, result, created_by=created_by, api_key=api_key, campaign=campaign)
        if on_chunk is not None:
            on_chunk(result.created)
    return result


def _create_chunk(chunk, result: BulkResult, *, created_by, api_key, campaign) -> None:
    now = timezone.now()
    batch_size = settings.SEND_BATCH_SIZE
    rows: list[Message] = []
    # Queued rows get their job id before the INSERT, one job per SEND_BATCH_SIZE rows of a priority.
    open_jobs: dict[str, tuple[str, int]] = {}
    for request, content in chunk:
        due = request.send_at is None or request.send_at <= now
        job_id = ""
        if due:
            current_id, used = open_jobs.get(request.priority, ("", batch_size))
            if used >= batch_size:
                current_id, used = new_job_id(), 0
            open_jobs[request.priority] = (current_id, used + 1)
            job_id = current_id
        rows.append(
            Message(
                channel=request.channel,
                recipient=request.recipient,
                sender=request.sender,
                subject=content.subject,
                body=content.body,
                html_body=content.html_body,
                template=request.template,
                context=request.context,
                metadata=request.metadata,
                priority=request.priority,
                send_at=request.send_at,
                status=Status.QUEUED if due else Status.SCHEDULED,
                job_id=job_id,
                queued_at=now if due else None,
                created_by=created_by,
                api_key=api_key,
                campaign=campaign,
                created_at=now,
            )
        )
    who = f"API key {api_key.name}" if api_key else (f"{created_by}" if created_by else "system")
    with transaction.atomic():
        Message.objects.bulk_create(rows, batch_size=1000)
        MessageEvent.objects.bulk_create(
            (
                MessageEvent(message_id=m.pk, to_status=m.status, detail=f"Created in bulk by {who}.", created_at=now)
                for m in rows
            ),
            batch_size=1000,
        )
        jobs: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for message in rows:
            if message.job_id:
                jobs[message.priority][message.job_id].append(message.pk)
        pairs = {priority: list(by_job.items()) for priority, by_job in jobs.items()}
        transaction.on_commit(lambda: enqueue_jobs(pairs))
    queued = sum(1 for m in rows if m.status == Status.QUEUED)
    result.created += len(rows)
    result.queued += queued
    result.scheduled += len(rows) - queued
    result.first_id = result.first_id or rows[0].pk
    result.last_id = rows[-1].pk
