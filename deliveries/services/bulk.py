"""Creating many messages at once: bulk inserts in chunks, one Redis pipeline per chunk, bounded memory.

The batch API, `send_bulk` and campaign fan-out all come through here, so 100,000 recipients never mean
100,000 INSERTs or 100,000 Redis round trips.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from content.services.templates import RenderedContent

from ..db.events import created_events_insert
from ..db.features import parallel_writers_possible
from ..db.row_inserts import ids_reserve, rows_insert
from ..models import ApiKey, Batch, Message, Status
from .dispatch import enqueue_jobs, new_job_id
from .messages import MessageRequest, held_fields, message_fields, message_holds

# Threads writing chunks at once, each with its own connection, outside a transaction on PostgreSQL: the
# database's work on one chunk (COPY, indexes, the events' foreign keys at commit) runs beside the next's.
BULK_WRITERS = 2


@dataclass
class BulkResult:
    created: int = 0
    queued: int = 0
    scheduled: int = 0
    failed: int = 0
    # Held for review by the cost guard's velocity limits (guard.services.velocity): never queued.
    held: int = 0
    # Items whose dedupe key a message already had (an earlier run of the same bulk send): not stored again.
    skipped: int = 0
    first_id: int | None = None
    last_id: int | None = None
    # With collect_ids: the id of each item's message in the order given (None for a skipped item).
    ids: list[int | None] = field(default_factory=list)
    # Each held message as (id, dedupe key, reason), for the caller to report it by its item or row.
    holds: list[tuple[int, str | None, str]] = field(default_factory=list)

    def add(self, part: BulkResult) -> None:
        """Count a later chunk's result in this one."""
        self.created += part.created
        self.queued += part.queued
        self.scheduled += part.scheduled
        self.failed += part.failed
        self.held += part.held
        self.holds.extend(part.holds)
        self.skipped += part.skipped
        self.first_id = self.first_id or part.first_id
        self.last_id = part.last_id or self.last_id
        self.ids.extend(part.ids)


@dataclass(frozen=True)
class RenderFailure:
    """In place of the content: the message could not be rendered for this recipient (a campaign's contact
    lacking a required variable). It is stored as `failed` with this reason, so the failure is on record."""

    reason: str
    code: str = "render"


# One message to store: its validated request and its rendered content (or why it could not be rendered).
BulkItem = tuple[MessageRequest, RenderedContent | RenderFailure]


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """`items` in lists of `size` (the last one shorter), read lazily: a generator is never held whole."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def messages_create_many(
    *,
    items: Iterable[BulkItem],
    created_by: User | None = None,
    api_key: ApiKey | None = None,
    campaign: models.Model | None = None,  # a campaigns.Campaign (deliveries does not import campaigns)
    batch: Batch | None = None,
    chunk_size: int = 2000,
    on_chunk: Callable[[int], None] | None = None,
    collect_ids: bool = False,
    new_dedupe_keys: bool = False,
) -> BulkResult:
    """Store validated messages in chunks of `chunk_size`, each in its own transaction, queueing each chunk's due
    messages after it commits. `items` may be a generator: at most BULK_WRITERS + 1 chunks are held in memory.

    An item whose request has a `dedupe_key` already used by a message is skipped (counted in `skipped`), so
    a bulk send run again after an interruption stores only what the first run did not; `new_dedupe_keys` says
    the caller knows none is stored yet (a bulk send's first run), so a chunk is not looked up first: a key
    stored after all makes the chunk's insert fail on the unique index, and it is stored again, looked up. A
    RenderFailure in place of the content stores the message as `failed` with its reason.
    `on_chunk(created_so_far)` is called after each chunk, for progress bars; with `collect_ids`, `ids` lists
    each item's message id.

    Outside a transaction on PostgreSQL, BULK_WRITERS threads with their own connections write chunks while this
    one prepares the next (often validating it): the database's share of the work no longer adds to the time.
    Inside a transaction every chunk must be written on its connection, so they are written here in turn.
    """
    result = BulkResult()
    options: dict[str, Any] = {"created_by": created_by, "api_key": api_key, "campaign": campaign, "batch": batch}

    def store(chunk: list[BulkItem], reserved_ids: list[int] | None = None) -> BulkResult:
        part = BulkResult()
        try:
            _create_chunk(
                chunk, part, collect_ids=collect_ids, reserved_ids=reserved_ids, check=not new_dedupe_keys, **options
            )
        except IntegrityError:
            if not any(request.dedupe_key for request, _ in chunk):
                raise
            # Another run (or writer) stored some of these dedupe keys between our check and our insert, or they
            # were not as new as the caller thought: again, checking them this time.
            part = BulkResult()
            _create_chunk(chunk, part, collect_ids=collect_ids, reserved_ids=reserved_ids, check=True, **options)
        return part

    def done(part: BulkResult) -> None:
        result.add(part)
        if on_chunk is not None:
            on_chunk(result.created)

    chunks = chunked(items, chunk_size)
    first_two = list(islice(chunks, 2))
    if not parallel_writers_possible() or len(first_two) < 2:
        # In a transaction every chunk must be written on its connection; and a single chunk is not worth a
        # thread and a new connection (a connection costs PostgreSQL milliseconds to set up).
        for chunk in chain(first_two, chunks):
            done(store(chunk))
        return result
    # Chunks take their ids here, in order, and their results are added in that order, whichever writer
    # finishes first: ids ascend with the items as with one writer.
    writers = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bulk-writer-{n}") for n in range(BULK_WRITERS)]
    pending: deque[Future[BulkResult]] = deque()
    try:
        for index, chunk in enumerate(chain(first_two, chunks)):
            if len(pending) == len(writers):
                done(pending.popleft().result())
            reserved = ids_reserve(Message, len(chunk))
            pending.append(writers[index % len(writers)].submit(store, chunk, reserved))
        while pending:
            done(pending.popleft().result())
    finally:
        for writer in writers:
            with contextlib.suppress(Exception):
                # A lambda, so that `connection` is looked up in the writer's thread: its own connection.
                writer.submit(lambda: connection.close()).result()
            writer.shutdown()
    return result


def _existing_dedupe_keys(chunk: list[BulkItem]) -> set[str | None]:
    keys = [request.dedupe_key for request, _ in chunk if request.dedupe_key]
    if not keys:
        return set()
    return set(Message.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))


def _create_chunk(
    chunk: list[BulkItem],
    result: BulkResult,
    *,
    created_by: User | None,
    api_key: ApiKey | None,
    campaign: models.Model | None,
    batch: Batch | None,
    collect_ids: bool,
    reserved_ids: list[int] | None = None,
    check: bool = True,
) -> None:
    now = timezone.now()
    batch_size = settings.SEND_BATCH_SIZE
    # Column values, not Message instances: building 5,000 instances costs more than storing them.
    rows: list[dict] = []
    # Queued rows get their job id before the INSERT, one job per SEND_BATCH_SIZE rows of a priority.
    open_jobs: dict[str, tuple[str, int]] = {}
    already_stored = _existing_dedupe_keys(chunk) if check else set()
    positions: list[int | None] = []
    notes: dict[int, str] = {}  # a row's own sentence on its timeline: why the quiet hours moved its send time
    common = {"created_by": created_by, "api_key": api_key, "campaign": campaign, "batch": batch, "created_at": now}
    storing: list[BulkItem] = []
    for request, content in chunk:
        if request.dedupe_key and request.dedupe_key in already_stored:
            positions.append(None)
            continue
        if request.dedupe_key:
            already_stored.add(request.dedupe_key)  # the same key twice in one chunk is stored once
        positions.append(len(storing))
        storing.append((request, content))
    # The chunk's messages counted against the velocity limits in one Redis call (none if no limit applies).
    holds = message_holds(
        [request for request, content in storing if not isinstance(content, RenderFailure)], api_key=api_key
    )
    next_hold = iter(holds)
    for request, content in storing:
        if isinstance(content, RenderFailure):
            rows.append(
                {
                    "channel": request.channel,
                    "recipient": request.recipient,
                    "sender": request.sender,
                    "template": request.template,
                    "context": request.context,
                    "metadata": request.metadata,
                    "priority": request.priority,
                    "send_at": request.send_at,
                    "status": Status.FAILED,
                    "failed_at": now,
                    "last_error_code": content.code,
                    "last_error_message": content.reason,
                    "dedupe_key": request.dedupe_key,
                    **common,
                }
            )
            continue
        hold = next(next_hold)
        if hold is not None:
            rows.append({**message_fields(request, content), **held_fields(hold), **common})
            continue
        waiting = bool(request.dependency)  # released by the dispatcher's dependency sweep, never queued here
        due = not waiting and (request.send_at is None or request.send_at <= now)
        job_id = ""
        if due:
            current_id, used = open_jobs.get(request.priority, ("", batch_size))
            if used >= batch_size:
                current_id, used = new_job_id(), 0
            open_jobs[request.priority] = (current_id, used + 1)
            job_id = current_id
        if request.deferral is not None:
            notes[len(rows)] = request.deferral.describe()
        rows.append(
            {
                **message_fields(request, content),
                "status": Status.WAITING if waiting else (Status.QUEUED if due else Status.SCHEDULED),
                "job_id": job_id,
                "queued_at": now if due else None,
                **common,
            }
        )
    skipped = positions.count(None)
    if not rows:
        result.skipped += skipped
        if collect_ids:
            result.ids.extend(positions)
        return
    who = f"API key {api_key.name}" if api_key else (f"{created_by}" if created_by else "system")
    created = f"Created in bulk by {who}."
    with transaction.atomic():
        ids = rows_insert(Message, rows, now=now, ids=reserved_ids)
        created_events_insert(ids, rows, detail=created, now=now, notes=notes)
        jobs: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for pk, row in zip(ids, rows, strict=True):
            if row.get("job_id"):
                jobs[row["priority"]][row["job_id"]].append(pk)
        pairs = {priority: list(by_job.items()) for priority, by_job in jobs.items()}
        transaction.on_commit(lambda: enqueue_jobs(pairs))
    if collect_ids:
        result.ids.extend(None if position is None else ids[position] for position in positions)
    result.skipped += skipped
    queued = sum(1 for row in rows if row["status"] == Status.QUEUED)
    failed = sum(1 for row in rows if row["status"] == Status.FAILED)
    held = [(pk, row) for pk, row in zip(ids, rows, strict=True) if row["status"] == Status.HELD] if any(holds) else []
    result.created += len(rows)
    result.queued += queued
    result.failed += failed
    result.held += len(held)
    result.holds.extend((pk, row["dedupe_key"], row["last_error_message"]) for pk, row in held)
    result.scheduled += len(rows) - queued - failed - len(held)
    result.first_id = result.first_id or ids[0]
    result.last_id = ids[-1]
