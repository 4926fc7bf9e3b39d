"""Archiving finished messages: old enough ones, with their timeline, to gzip JSON Lines files (one per day of
their created_at), then deleted from the hot tables, a chunk per transaction.

A chunk runs holding the archive lock (ArchiveCursor's row): it reads up to CHUNK_SIZE finished messages older than
the cutoff, newest first below where the last chunk stopped (a message is archived before the one it depends on),
locks them, keeps back those a hold names (deliveries.archiving.holds), appends the rest and their events to their
day files as one gzip member each, fsyncs, then records the files' committed sizes, adds the campaign and batch
tallies and deletes the rows, in one commit. Killed anywhere, the next run cuts off what was written after the
committed size and reads the rows again: nothing lost, nothing twice.

`messages_archive` is the command's whole pass; `archive_tick` the dispatchers' daily pass in bounded slices.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from ..archiving.day_files import ArchiveFileError, ArchiveReading, day_file_path, member_append, rewrite_settle
from ..archiving.holds import ArchiveCandidates, held_back
from ..archiving.lines import LINE_HEAD, line_sql, row_line
from ..archiving.lock import archive_lock, latest_archive_erasure
from ..archiving.rows import rows_delete
from ..archiving.tallies import tallies_change
from ..db.features import json_lines_built_by_database
from ..db.lookups import among
from ..models import ArchiveFile, Message, MessageEvent
from ..state import FINAL_STATUSES
from .archive_erasure import ErasedAddresses, archived_erasures, lines_blanked_when_erased

logger = logging.getLogger("deliveries.archive")

CHUNK_SIZE = 5000
# The youngest messages archiving takes: the console's queue monitor shows (and retries) a week of failures.
MIN_AGE = timedelta(days=7)
# The dispatchers' pass: once a day, in slices of about this long each time the task runs.
PASS_EVERY = timedelta(days=1)
TICK_BUDGET_SECONDS = 1.0

Position = tuple[datetime, int]  # (created_at, id) of the last message a chunk looked at


@dataclass
class ArchiveReport:
    """What a pass (or a chunk) archived or would archive, and what it kept back and why."""

    messages: int = 0
    events: int = 0
    looked_at: int = 0
    held: Counter[str] = field(default_factory=Counter)
    files: Counter[str] = field(default_factory=Counter)  # path -> messages written to it
    position: Position | None = None  # where the next chunk goes on; None: nothing older is left

    def add(self, other: ArchiveReport) -> None:
        self.messages += other.messages
        self.events += other.events
        self.looked_at += other.looked_at
        self.held.update(other.held)
        self.files.update(other.files)
        self.position = other.position


def archive_cutoff(older_than: timedelta, *, now: datetime | None = None) -> datetime:
    """Messages created (and last changed) before this are old enough. Refuses an age under MIN_AGE."""
    if older_than < MIN_AGE:
        raise ValueError(
            f"{_age_text(older_than)} is too recent: archiving takes messages at least {MIN_AGE.days} days old "
            "(the queue monitor shows and retries a week of failures)."
        )
    return (now or timezone.now()) - older_than


def archive_candidates(cutoff: datetime) -> Any:
    """The finished messages old enough to archive: a final status, created and last changed before `cutoff`."""
    return Message.objects.filter(status__in=FINAL_STATUSES, created_at__lt=cutoff, updated_at__lt=cutoff)


def messages_archive(
    *,
    older_than: timedelta,
    directory: Path,
    dry_run: bool = False,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[ArchiveReport], object] | None = None,
) -> ArchiveReport:
    """Archive (or with `dry_run` only count) every finished message older than `older_than`, a chunk per
    transaction, waiting for the archive lock when a dispatcher holds it. Raises ValueError (age) and
    ArchiveFileError (the directory or a file)."""
    cutoff = archive_cutoff(older_than)
    if not dry_run:
        _directory_ready(directory)
    report = ArchiveReport()
    position: Position | None = None
    while True:
        with transaction.atomic():
            if not dry_run:
                archive_lock(wait=True)
            chunk = _chunk_archive(cutoff, below=position, directory=directory, limit=chunk_size, dry_run=dry_run)
        report.add(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
        if chunk.position is None:
            return report
        position = chunk.position


def archive_tick() -> None:
    """The dispatchers' periodic task: with ARCHIVE_AFTER_DAYS set, one pass a day over the messages older than
    that, a slice of about TICK_BUDGET_SECONDS each run; a dispatcher finding the lock taken leaves it to the
    other. Logs what it archived, and a failure to write with what to do."""
    days = settings.ARCHIVE_AFTER_DAYS
    if not days:
        return
    directory = Path(settings.ARCHIVE_DIR)
    started = time.monotonic()
    report = ArchiveReport()
    try:
        _directory_ready(directory)
        while True:  # a chunk at least, then more while within the budget
            chunk = _pass_step(older_than=timedelta(days=days), directory=directory)
            if chunk is None:
                break
            report.add(chunk)
            if chunk.position is None or time.monotonic() - started >= TICK_BUDGET_SECONDS:
                break
    except (ArchiveFileError, ValueError) as error:
        logger.error("Archiving (ARCHIVE_AFTER_DAYS=%s) stopped: %s", days, error)
        return
    if report.messages:
        logger.info("Archived %s message(s) and %s event(s) to %s", report.messages, report.events, directory)


def _pass_step(*, older_than: timedelta, directory: Path) -> ArchiveReport | None:
    """One chunk of the daily pass, or None when there is nothing to do now (the day's pass is over, or another
    dispatcher holds the lock)."""
    now = timezone.now()
    with transaction.atomic():
        cursor = archive_lock(wait=False)
        if cursor is None:
            return None
        if cursor.cutoff is None:
            if cursor.finished_at is not None and now - cursor.finished_at < PASS_EVERY:
                return None
            cursor.cutoff, cursor.started_at = archive_cutoff(older_than, now=now), now
            cursor.position_created_at = cursor.position_id = None
        below = None
        if cursor.position_created_at is not None and cursor.position_id is not None:
            below = (cursor.position_created_at, cursor.position_id)
        chunk = _chunk_archive(cursor.cutoff, below=below, directory=directory, limit=CHUNK_SIZE, dry_run=False)
        if chunk.position is None:
            cursor.cutoff = cursor.position_created_at = cursor.position_id = None
            cursor.finished_at = now
        else:
            cursor.position_created_at, cursor.position_id = chunk.position
        cursor.save()
    return chunk


# What a chunk reads of each message besides its line: the holds, the tallies and the day need these.
MESSAGE_FIELDS = (
    "id",
    "created_at",
    "depends_on_id",
    "campaign_id",
    "batch_id",
    "status",
    "channel",
    "last_error_code",
    "last_error_message",
    "body",
    "recipient",
)


def _chunk_archive(
    cutoff: datetime, *, below: Position | None, directory: Path, limit: int, dry_run: bool
) -> ArchiveReport:
    """Archive the next chunk below `below` (the caller holds the lock, in its transaction)."""
    report = ArchiveReport()
    rows = archive_candidates(cutoff)
    if below is not None:
        rows = rows.filter(Q(created_at__lt=below[0]) | Q(created_at=below[0], pk__lt=below[1]))
    rows = rows.order_by("-created_at", "-pk")
    if not dry_run:
        rows = rows.select_for_update()
    chosen = list(rows.values_list("created_at", "pk")[:limit])
    if not chosen:
        return report
    report.position, report.looked_at = chosen[-1], len(chosen)
    # The lines are built for the chosen rows only (built in the ordering query, they were built for every row
    # the sort read).
    found = _with_lines(Message.objects.filter(among("pk", [pk for _at, pk in chosen])), Message, MESSAGE_FIELDS)
    messages = {row["id"]: row for row in sorted(found, key=lambda row: row["id"])}
    events = _with_lines(
        MessageEvent.objects.filter(among("message_id", messages)).order_by("pk"), MessageEvent, ("id", "message_id")
    )
    events_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        events_of[event["message_id"]].append(event)
    event_ids = {pk: [event["id"] for event in events_of.get(pk, [])] for pk in messages}
    held = held_back(ArchiveCandidates(messages=messages, event_ids=event_ids))
    report.held.update(held.values())
    kept = sorted(pk for pk in messages if pk not in held)
    erased = archived_erasures()
    if erased:
        _erased_lines_blank(erased, [messages[pk] for pk in kept], events_of)
    by_day: dict[date, list[int]] = defaultdict(list)
    for pk in kept:
        by_day[messages[pk]["created_at"].astimezone(UTC).date()].append(pk)
    report.messages, report.events = len(kept), sum(len(events_of[pk]) for pk in kept)
    for day, ids in sorted(by_day.items()):
        record, path = _day_file(directory, day, settle=not dry_run)
        report.files[str(path)] += len(ids)
        if dry_run:
            continue
        if record.pk is None:  # what it will hold is checked against every erasure so far as it is written
            record.erasures_applied = latest_archive_erasure()
        lines = [messages[pk]["line"] for pk in ids] + [event["line"] for pk in ids for event in events_of[pk]]
        record.size = member_append(path, committed=record.size, lines=lines)
        record.messages += len(ids)
        record.events += sum(len(events_of[pk]) for pk in ids)
        record.save()
    if not dry_run and kept:
        tallies_change((messages[pk] for pk in kept), sign=1)
        rows_delete(MessageEvent, "message_id", kept)
        rows_delete(Message, "id", kept)
    return report


def _erased_lines_blank(
    erased: ErasedAddresses, rows: list[dict[str, Any]], events_of: dict[int, list[dict[str, Any]]]
) -> None:
    """Blank the lines of the erased people's messages, and of their events: a message an erasure left in the
    table (it was being sent then) is in no file yet that the dispatchers could search for it later."""
    for row in rows:
        events = [event["line"] for event in events_of.get(row["id"], [])]
        blanked = lines_blanked_when_erased(erased, row, row["line"], events)
        if blanked is not None:
            row["line"], blanked_events = blanked
            for event, line in zip(events_of.get(row["id"], []), blanked_events, strict=True):
                event["line"] = line


def _with_lines(rows: QuerySet[Any], model: type[Any], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """`fields` of each row, and its archive line under "line": built by PostgreSQL, or here from every field."""
    if json_lines_built_by_database():
        line = RawSQL(line_sql(model, connection), ())  # noqa: S611 - built from our own model names
        return [{**row, "line": row["line"] + "\n"} for row in rows.annotate(line=line).values(*fields, "line")]
    return [
        {**row, "line": row_line(model, row)} for row in rows.values(*[f.attname for f in model._meta.concrete_fields])
    ]


def _day_file(directory: Path, day: date, *, settle: bool) -> tuple[ArchiveFile, Path]:
    """The file a day's messages go to now, with its record (unsaved when new): the first part that is ours and
    intact, or the first free name. A recorded file gone from disk (moved to cold storage, or written on another
    host) and a file there that no record knows are left alone. With `settle` (the caller holds the archive lock),
    an unfinished rewrite of the file is settled first."""
    directory = directory.resolve()
    for part in count(1):
        path = day_file_path(directory, day, part)
        record = ArchiveFile.objects.filter(path=str(path)).first()
        exists = path.exists()
        if record is not None and exists:
            if settle:
                rewrite_settle(path, record.size)
            on_disk = path.stat().st_size
            if on_disk < record.size and settle:  # a dry run may find a rewrite not yet in place: it only counts
                raise ArchiveFileError(
                    f"{path} holds {on_disk} bytes, fewer than the {record.size} archived into it: it was changed "
                    "since. Keep a copy, restore what it holds with restore_messages, then move it away: the next "
                    "run starts a new part for that day."
                )
            return record, path
        if not exists and (record is None or record.size == 0):
            return record or ArchiveFile(path=str(path), day=day), path
        if record is None and _holds_only_rows_in_the_table(path):
            # A run killed before committing its first chunk to this file created it: its record went with the
            # rollback, its rows are all still here, and the next write starts the file again.
            return ArchiveFile(path=str(path), day=day), path
    raise AssertionError("unreachable")  # pragma: no cover - count() never ends


def _holds_only_rows_in_the_table(path: Path) -> bool:
    """Whether every message in the file is in the table (so it holds nothing archiving deleted)."""
    reading = ArchiveReading(path)
    ids: set[int] = set()
    try:
        for lines in reading.lines():
            heads = (LINE_HEAD.match(line) for line in lines)
            ids.update(int(head["pk"]) for head in heads if head and head["model"] == "deliveries.message")
    except ArchiveFileError:
        return False
    return Message.objects.filter(among("pk", ids)).count() == len(ids) if ids else True


def _directory_ready(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ArchiveFileError(
            f"Cannot create the archive directory {directory}: {error.strerror or error}. Create it, or give another "
            "(--to, or ARCHIVE_DIR)."
        ) from error


def _age_text(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{age.days} days" if hours % 24 == 0 else f"{hours:g} hours"
