"""Restoring archived messages: the rows of archive files (deliveries.services.archive) back into the hot tables,
with their ids and every value as archived, and the campaign and batch tallies taken down by as much.

Idempotent: a message or event whose id is already in the table is skipped, so a restore run twice, or killed and
run again, restores each row once. Each gzip member (one archive chunk) is restored in one transaction under the
archive lock, so a restore and an archive run take turns. A link to a row deleted since (a campaign, a template,
an API key...) comes back empty, as deleting that row would have left it (their foreign keys are SET_NULL). A
message that depends on another waits until that one is back: files are read in name order (oldest day first)
and what still waits at the end is reported, with the message it waits for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from ..archiving.day_files import ArchiveFileError, ArchiveReading, rewrite_settle
from ..archiving.lines import ArchiveLineError
from ..archiving.lock import archive_lock
from ..archiving.staged_rows import StagedRows, staged_rows
from ..archiving.tallies import tallies_change
from ..db.lookups import among
from ..models import ArchiveFile, Message
from .archive_erasure import restored_messages_erase

# The message's links that a deletion leaves empty (on_delete=SET_NULL), so a missing one is restored empty.
NULLABLE_LINKS = ("template", "campaign", "batch", "created_by", "api_key", "idempotency_key")


class RestoreError(Exception):
    """A file that cannot be restored; the message names it and what to do."""


@dataclass
class RestoreReport:
    messages: int = 0
    events: int = 0
    already_present: int = 0  # messages skipped: their id is in the table
    erased: int = 0  # messages restored blank: their recipient was erased after the file was written
    unlinked: Counter[str] = field(default_factory=Counter)  # link -> messages restored without it
    unfinished: list[str] = field(default_factory=list)  # files ending in a chunk a killed run left unfinished
    waiting: dict[int, int] = field(default_factory=dict)  # message -> the message it depends on, not restored


def messages_restore(
    *, paths: Iterable[Path], on_progress: Callable[[int, int], object] | None = None
) -> RestoreReport:
    """Restore every row of these archive files, oldest day first. `on_progress(bytes_read, messages_restored)`
    after each chunk, the bytes counted over all the files. Raises RestoreError (a file missing, damaged, or not
    an archive)."""
    ordered = sorted(paths, key=lambda path: path.name)
    for path in ordered:
        if not path.is_file():
            raise RestoreError(f"{path}: no such file. Give the archive files (messages-YYYY-MM-DD.jsonl.gz).")
    _rewrites_settle(ordered)
    report = RestoreReport()
    staged = staged_rows()
    before = 0  # bytes of the files read before this one
    for path in ordered:
        reading = ArchiveReading(path)
        try:
            for lines in reading.lines():
                _restore_chunk(path, lines, staged, report)
                if on_progress is not None:
                    on_progress(before + reading.bytes_read, report.messages)
        except ArchiveFileError as error:
            raise RestoreError(str(error)) from error
        if reading.unfinished:
            report.unfinished.append(str(path))
        before += reading.bytes_read
    report.waiting = {pk: row["depends_on_id"] for pk, row in staged.messages().items()}
    return report


def _rewrites_settle(paths: list[Path]) -> None:
    """Put in place, or drop, what a rewrite of these files (an erasure in the archive) left when it was killed,
    so that the file read is the one recorded."""
    with transaction.atomic():
        archive_lock(wait=True)
        recorded = ArchiveFile.objects.filter(path__in=[str(path.resolve()) for path in paths])
        for path, size in recorded.values_list("path", "size"):
            try:
                rewrite_settle(Path(path), size)
            except ArchiveFileError as error:
                raise RestoreError(str(error)) from error


def _restore_chunk(path: Path, lines: list[str], staged: StagedRows, report: RestoreReport) -> None:
    """Stage a chunk's lines, then restore, in one transaction under the archive lock, every staged message not in
    the table whose parent (if any) is in the table or restored with it, and the events of these and of the
    staged messages already there; the others stay staged."""
    with transaction.atomic():
        archive_lock(wait=True)
        try:
            staged.add(lines)
        except ArchiveLineError as error:
            raise RestoreError(f"{path}: {error}. Is it a file archive_messages wrote?") from error
        pending = staged.messages()
        present = set(Message.objects.filter(among("pk", pending)).values_list("pk", flat=True))
        candidates = {pk: row for pk, row in pending.items() if pk not in present}
        parents = {row["depends_on_id"] for row in candidates.values()} - set(candidates) - {None}
        existing_parents = set(Message.objects.filter(among("pk", parents)).values_list("pk", flat=True))
        ready = _with_parents(candidates, existing_parents | present)
        rows = [candidates[pk] for pk in sorted(ready)]
        tallies_change(rows, sign=-1)
        events = staged.insert(ready, emptied=_missing_links(rows, report), events_of=present | ready)
        report.erased += restored_messages_erase(sorted(ready))
    report.messages += len(rows)
    report.events += events
    report.already_present += len(present)


def _with_parents(candidates: dict[int, dict[str, Any]], in_table: set[int]) -> set[int]:
    """The candidates that can go in now: no parent, a parent in the table, or a parent that can go in too."""
    ready: set[int] = set()
    waiting: set[int] = set()

    def can(pk: int) -> bool:
        chain: list[int] = []
        while pk not in ready and pk not in waiting and pk not in chain:
            chain.append(pk)
            parent = candidates[pk]["depends_on_id"]
            if parent is None or parent in in_table:
                break
            if parent not in candidates:
                waiting.update(chain)
                return False
            pk = parent
        else:
            if pk not in ready:  # waiting, or a loop (never made by the API)
                waiting.update(chain)
                return False
        ready.update(chain)
        return True

    return {pk for pk in candidates if can(pk)}


def _missing_links(rows: list[dict[str, Any]], report: RestoreReport) -> dict[str, set[int]]:
    """For each link deleting its row leaves empty: the ids these rows point to that are gone (counted)."""
    emptied: dict[str, set[int]] = {}
    for name in NULLABLE_LINKS:
        link = Message._meta.get_field(name)
        attname = link.attname  # type: ignore[union-attr]
        wanted = {row[attname] for row in rows} - {None}
        if not wanted:
            continue
        target = link.related_model._default_manager  # type: ignore[union-attr]
        missing = wanted - set(target.filter(pk__in=list(wanted)).values_list("pk", flat=True))
        if missing:
            emptied[attname] = missing
            report.unlinked[name] += sum(1 for row in rows if row[attname] in missing)
    return emptied
