"""Erasure in the archive: the files on the dispatchers' disks, what archiving writes next, and what a restore
brings back.

An erasure (deliveries.services.erasure) blanks the person's rows in the tables at once and records each of their
addresses as an ArchiveErasure: a keyed hash, never the address, recorded holding the archive lock. The archive
files are on the disk of the dispatcher that wrote them, so each dispatcher's `archive_erasure_tick` searches the
files on its own disk written before the latest erasure (ArchiveFile.erasures_applied) and rewrites those holding
such messages without them: recipient, texts, context, metadata and media emptied, as in the tables, and their
timeline events' details emptied whole (a file gives only the hash to find the person by, not the address to cut
out of a text). A file that holds none of them is only marked searched.

A rewrite is two steps under the lock: the rewritten file is written beside the old one and its size committed,
then it is put in place and the file marked searched. Killed between them, the file is still unmarked, so the next
tick opens it again, settling the rewrite first (day_files.rewrite_settle), and finds nothing more to blank.

Archiving checks what it writes against every erasure (a message an erasure left because it was being sent ends
up in a file written later), and a restore blanks what a copy made before an erasure brings back. Only messages
created before the erasure are the erased person's: someone who gave the same number again later is messaged,
archived and restored as anyone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import DatabaseError, transaction

from ..archiving.day_files import ArchiveFileError, ArchiveReading, committed_cut, rewrite_settle, rewrite_write
from ..archiving.lines import LINE_HEAD
from ..archiving.lock import archive_lock, latest_archive_erasure
from ..db.lookups import among
from ..models import ArchiveErasure, ArchiveFile, Message
from .erasure import BLANKED_MESSAGE_FIELDS, event_data_kept, messages_blank_whole
from .suppression import suppression_hashes_of

logger = logging.getLogger("deliveries.archive")

# A dispatcher's tick goes on to another file while under this; a file is never left half done.
TICK_BUDGET_SECONDS = 1.0

ErasedAddresses = dict[tuple[str, str], datetime]  # (channel, address hash) -> when the erasure was asked


@dataclass
class FileErasure:
    """What searching one file found and blanked."""

    path: str
    messages: int = 0
    events: int = 0


def archive_erasure_tick() -> None:
    """The dispatchers' periodic task: search the archive files on this host's disk written before the latest
    erasure, for about TICK_BUDGET_SECONDS. A dispatcher finding the archive lock taken tries again at its next
    tick. Logs each file rewritten, and a file it cannot search with what to do; never stops the dispatcher."""
    latest = latest_archive_erasure()  # only to know whether to look: the file's search reads it under the lock
    if not latest:
        return
    started = time.monotonic()
    waiting = ArchiveFile.objects.filter(erasures_applied__lt=latest).order_by("pk").values_list("pk", "path")
    for pk, path in list(waiting):
        if not Path(path).exists():  # on another dispatcher's disk, or moved away: restore_messages blanks it
            continue
        try:
            erased = archive_file_erase(pk, wait=False)
        except DatabaseError:
            raise  # the dispatcher's pass says the database is unavailable; this task stays due
        except ArchiveFileError as error:
            logger.error(
                "Cannot erase in the archive file %s: %s The next tick tries again; if it keeps failing, restore "
                "the file's rows with restore_messages, run erase_person again, and delete the file.",
                path,
                error,
            )
            erased = FileErasure(path=path)
        except Exception:  # one bad file must not stop the dispatcher's other work
            logger.exception("Searching the archive file %s for erased people failed; the next tick tries again.", path)
            erased = FileErasure(path=path)
        if erased is None:
            return
        if erased.messages:
            logger.info(
                "Erased %s message(s) and %s event(s) of erased people from the archive file %s",
                erased.messages,
                erased.events,
                erased.path,
            )
        if time.monotonic() - started >= TICK_BUDGET_SECONDS:
            return


def archive_file_erase(pk: int, *, wait: bool) -> FileErasure | None:
    """Search one archive file (its record's id) for the messages of the erasures since its last search, and
    rewrite it without them. None if the lock is taken and `wait` is off. Raises ArchiveFileError (the file cannot
    be read or written)."""
    with transaction.atomic():
        if archive_lock(wait=wait) is None:
            return None
        latest = latest_archive_erasure()
        record = ArchiveFile.objects.get(pk=pk)
        path = Path(record.path)
        erasure = FileErasure(path=str(path))
        rewrite_settle(path, record.size)
        if path.stat().st_size < record.size:
            raise ArchiveFileError(
                f"it holds fewer bytes than the {record.size} archived into it: it was changed since. Put a copy "
                "of it back in its place."
            )
        committed_cut(path, record.size)
        erased = _erased_addresses(after=record.erasures_applied, up_to=latest)
        # Read once to find them (most files hold nobody erased), and only then again to write the rewrite.
        if not erased or not _holds_any(path, erased):
            record.erasures_applied = latest
            record.save(update_fields=["erasures_applied", "updated_at"])
            return erasure
        record.size = rewrite_write(path, _members_blanked(path, erased, erasure))
        record.save(update_fields=["size", "updated_at"])
    # Taken by another now, the file stays unmarked: the next search settles the rewrite and finds nothing more.
    with transaction.atomic():
        if archive_lock(wait=wait) is not None:
            record = ArchiveFile.objects.get(pk=pk)
            rewrite_settle(path, record.size)
            record.erasures_applied = latest
            record.save(update_fields=["erasures_applied", "updated_at"])
    return erasure


def archived_erasures() -> ErasedAddresses:
    """Every erasure's addresses: what archiving checks the messages it writes against (empty: nobody erased)."""
    return _erased_addresses(after=0, up_to=None)


def lines_blanked_when_erased(
    erased: ErasedAddresses, row: dict[str, Any], line: str, event_lines: list[str]
) -> tuple[str, list[str]] | None:
    """The message's line and its events' lines blanked, if its recipient was erased after it was created (`row`
    has its channel, recipient and created_at); else None."""
    if not _is_erased(erased, row["channel"], row["recipient"], row["created_at"]):
        return None
    return _message_line_blank(line), [_event_line_blank(event) for event in event_lines]


def restored_messages_erase(message_ids: Sequence[int]) -> int:
    """Blank the messages just restored whose recipient was erased after they were created (a copy of a file made
    before the erasure, or one no dispatcher could reach). Returns how many. Runs in the restore's transaction."""
    if not message_ids or not ArchiveErasure.objects.exists():
        return 0
    erased = archived_erasures()
    rows = Message.objects.filter(among("pk", message_ids)).values_list("pk", "channel", "recipient", "created_at")
    ids = [pk for pk, channel, recipient, created_at in rows if _is_erased(erased, channel, recipient, created_at)]
    messages_blank_whole(ids)
    return len(ids)


def _erased_addresses(*, after: int, up_to: int | None) -> ErasedAddresses:
    erasures = ArchiveErasure.objects.filter(pk__gt=after)
    if up_to is not None:
        erasures = erasures.filter(pk__lte=up_to)
    erased: ErasedAddresses = {}
    for channel, address_hash, requested_at in erasures.values_list("channel", "address_hash", "requested_at"):
        key = (channel, address_hash)
        erased[key] = max(requested_at, erased.get(key, requested_at))
    return erased


def _is_erased(erased: ErasedAddresses, channel: str, recipient: str | None, created_at: datetime) -> bool:
    if not recipient:
        return False
    for address_hash in suppression_hashes_of(channel, recipient):
        requested_at = erased.get((channel, address_hash))
        if requested_at is not None and created_at < requested_at:
            return True
    return False


def _holds_any(path: Path, erased: ErasedAddresses) -> bool:
    found = FileErasure(path=str(path))
    return any(found.messages for _member in _members_blanked(path, erased, found))


def _members_blanked(path: Path, erased: ErasedAddresses, erasure: FileErasure) -> Iterator[list[str]]:
    """The file's members with the erased people's messages and their events blanked (counted in `erasure`).
    An event follows its message in the file (the same chunk's member), so the ids found so far are enough."""
    erased_ids: set[int] = set()
    reading = ArchiveReading(path)
    for lines in reading.lines():
        member = []
        for line in lines:
            head = LINE_HEAD.match(line)
            if head is None:
                raise ArchiveFileError(f"{path} holds a line that is not an archived row: not a file archiving wrote.")
            if head["model"] == "deliveries.message":
                fields = json.loads(line)["fields"]
                created_at = datetime.fromisoformat(fields["created_at"])
                if _is_erased(erased, fields["channel"], fields["recipient"], created_at):
                    erased_ids.add(int(head["pk"]))
                    erasure.messages += 1
                    line = _message_line_blank(line)
            elif head["message"] not in (None, "null") and int(head["message"]) in erased_ids:
                line = _event_line_blank(line)
                erasure.events += 1
            member.append(line)
        yield member
    if reading.unfinished:
        raise ArchiveFileError(f"{path} ends in a damaged chunk within what was archived into it.")


def _message_line_blank(line: str) -> str:
    row = json.loads(line)
    row["fields"].update(BLANKED_MESSAGE_FIELDS, last_error_message="")
    return _line(row)


def _event_line_blank(line: str) -> str:
    row = json.loads(line)
    row["fields"].update(detail="", data=event_data_kept(row["fields"]["data"]))
    return _line(row)


def _line(row: dict[str, Any]) -> str:
    # As lines.row_line writes it: the same key order (LINE_HEAD reads "model", "pk", then an event's "message").
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
