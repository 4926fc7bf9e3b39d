"""Archiving waits for the rollups: a message whose events are not all counted yet stays in the hot tables.

The rollups are counted from MessageEvent rows by id (analytics.services.cursor); an event deleted before the job
read it would never be counted, and one counted is never subtracted. So a message is archived only once every
event of it is at or below the events cursor's watermark and none is among its gaps.
"""

from __future__ import annotations

from collections.abc import Mapping

from deliveries.archiving.holds import ArchiveCandidates, archive_hold

from ..models import RollupCursor, RollupGap
from .rollup import EVENTS_CURSOR

REASON = "the analytics rollup has not counted its events yet"


@archive_hold
def events_not_counted(candidates: ArchiveCandidates) -> Mapping[int, str]:
    with_events = {pk: ids for pk, ids in candidates.event_ids.items() if ids}
    if not with_events:
        return {}
    cursor = RollupCursor.objects.filter(name=EVENTS_CURSOR, ran_at__isnull=False).first()
    if cursor is None:
        return dict.fromkeys(with_events, REASON)
    # The gaps are the ids missing in the last ANALYTICS_GAP_MAX_AGE seconds' reads: a few, all read at once.
    gaps = set(RollupGap.objects.filter(cursor=cursor).values_list("row_id", flat=True))
    return {
        pk: REASON
        for pk, ids in with_events.items()
        if any(event_id > cursor.watermark or event_id in gaps for event_id in ids)
    }
