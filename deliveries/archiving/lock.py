"""The archive lock: ArchiveCursor's row, held by every archive chunk, restore chunk, archive file rewrite and
erasure, so that they take turns. Whoever holds it may settle a file's unfinished rewrite (day_files) and read
the latest erasure knowing that no erasure is half recorded."""

from __future__ import annotations

from django.db.models import Max

from ..models import ArchiveCursor, ArchiveErasure

CURSOR_NAME = "messages"


def archive_lock(*, wait: bool) -> ArchiveCursor | None:
    """The archive lock (ArchiveCursor's row), held to the end of the caller's transaction; None if another
    transaction holds it and `wait` is off. (SQLite takes one writer at a time anyway.)"""
    ArchiveCursor.objects.get_or_create(name=CURSOR_NAME)
    return ArchiveCursor.objects.select_for_update(skip_locked=not wait).filter(name=CURSOR_NAME).first()


def latest_archive_erasure() -> int:
    """The id of the last erasure recorded for the archive files (0: none yet). Read under the lock: an erasure
    records its addresses holding it, so no lower id can still commit after this read."""
    return ArchiveErasure.objects.aggregate(latest=Max("pk"))["latest"] or 0
