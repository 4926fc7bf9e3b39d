"""Reading a table incrementally by id, exactly once, while other transactions are still writing it.

Ids are handed out when a row is inserted but become visible when its transaction commits, so they do not commit
in order: reading "id > watermark" alone would skip for good a row whose transaction committed after a higher id
was read. So each id below the watermark that was missing when read is kept as a gap (RollupGap), looked for again
on every run, and counted when it appears. A gap is forgotten after ANALYTICS_GAP_MAX_AGE seconds: by then its
transaction rolled back (a duplicate webhook's insert, a failed request), since none of ours runs that long.

The caller holds the cursor's row lock (`cursor_locked`) for the whole read-and-count transaction: two jobs at
once take turns, and the second reads what the first left.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from ..models import RollupCursor, RollupGap

# Gap ids looked up per statement.
GAP_CHUNK = 5000


def cursor_locked(name: str) -> RollupCursor:
    """The cursor `name`, created at 0 the first time, locked until the end of the caller's transaction."""
    RollupCursor.objects.get_or_create(name=name)
    return RollupCursor.objects.select_for_update().get(name=name)


def rows_not_yet_counted(
    cursor: RollupCursor, rows: QuerySet[Any], fields: Sequence[str], *, limit: int, now: datetime
) -> list[tuple[Any, ...]]:
    """The `fields` (the id first) of the rows of `rows` the cursor has not passed yet: its gaps that have
    appeared, then up to `limit` rows above its watermark, in id order. Moves the cursor past them (saved), records
    the ids it skipped as gaps and forgets the gaps found or too old. Call in a transaction holding the cursor."""
    gaps = RollupGap.objects.filter(cursor=cursor)
    late = _rows_in(rows, list(gaps.values_list("row_id", flat=True)), fields)
    fresh = list(rows.filter(pk__gt=cursor.watermark).order_by("pk").values_list(*fields)[:limit])
    if late:
        gaps.filter(row_id__in=[row[0] for row in late]).delete()
    max_age = timedelta(seconds=settings.ANALYTICS_GAP_MAX_AGE)
    gaps.filter(seen_at__lt=now - max_age).delete()
    if fresh:
        seen = {row[0] for row in fresh}
        top = fresh[-1][0]
        # The first run starts at the first row it finds: the ids below it are rows deleted long ago.
        start = cursor.watermark + 1 if cursor.ran_at is not None else fresh[0][0]
        missing = [pk for pk in range(start, top) if pk not in seen]
        RollupGap.objects.bulk_create(
            [RollupGap(cursor=cursor, row_id=pk, seen_at=now) for pk in missing], batch_size=1000
        )
        cursor.watermark = top
    cursor.ran_at = now
    cursor.save(update_fields=["watermark", "ran_at"])
    return late + fresh


def oldest_not_yet_counted(cursor: RollupCursor, rows: QuerySet[Any], stamp: str) -> datetime | None:
    """When the oldest row the cursor has not counted yet was written (`stamp`: its time field), or None."""
    first_above = rows.filter(pk__gt=cursor.watermark).order_by("pk").values_list(stamp, flat=True).first()
    gap_ids = list(RollupGap.objects.filter(cursor=cursor).values_list("row_id", flat=True))
    in_gaps = [row[1] for row in _rows_in(rows, gap_ids, ("pk", stamp))]
    found = [at for at in (first_above, *in_gaps) if at is not None]
    return min(found) if found else None


def _rows_in(rows: QuerySet[Any], ids: list[int], fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """The `fields` of the rows with these ids, looked up by id in chunks: a subquery over the gaps instead made
    PostgreSQL scan the whole table on every run."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), GAP_CHUNK):
        found += rows.filter(pk__in=ids[start : start + GAP_CHUNK]).values_list(*fields)
    return found
