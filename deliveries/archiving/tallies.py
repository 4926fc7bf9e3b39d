"""The counts of archived messages by campaign and bulk send (ArchivedMessageTally): added in the transaction that
deletes the messages, subtracted in the one that restores them, so the campaign and batch figures (hot rows plus
tallies) stay what they were. Written under the archive lock only, so no two writers meet."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from content.services.sms_segments import sms_segments

from ..models import ArchivedMessageTally, Status

TallyKey = tuple[int | None, int | None, str, str, str]  # campaign, batch, status, channel, error code
KEY_FIELDS = ("campaign_id", "batch_id", "status", "channel", "last_error_code")
# The statuses whose SMS the campaign page counts segments of (what the provider bills).
SENT_STATUSES = frozenset({Status.SENT, Status.DELIVERED, Status.UNDELIVERED})


def tallies_change(rows: Iterable[dict[str, Any]], *, sign: int) -> None:
    """Add (`sign` 1) or subtract (-1) these message rows (by attname) to or from the tallies. Rows of no
    campaign and no bulk send are not counted: nothing reads them by group."""
    changes: dict[TallyKey, list[Any]] = {}
    for row in rows:
        if row["campaign_id"] is None and row["batch_id"] is None:
            continue
        key: TallyKey = tuple(row[name] for name in KEY_FIELDS)
        change = changes.setdefault(key, [0, 0, ""])
        change[0] += 1
        if row["channel"] == "sms" and row["status"] in SENT_STATUSES:
            change[1] += sms_segments(row["body"]).segments
        change[2] = max(change[2], row["last_error_message"])
    if not changes:
        return
    narrowing = {
        "status__in": {key[2] for key in changes},
        "channel__in": {key[3] for key in changes},
        "last_error_code__in": {key[4] for key in changes},
    }
    existing = {
        tuple(getattr(tally, name) for name in KEY_FIELDS): tally
        for tally in ArchivedMessageTally.objects.filter(
            Q(campaign_id__in={key[0] for key in changes if key[0] is not None})
            | Q(batch_id__in={key[1] for key in changes if key[1] is not None}),
            **narrowing,
        )
    }
    for key, (messages, segments, example) in changes.items():
        tally = existing.get(key) or ArchivedMessageTally(**dict(zip(KEY_FIELDS, key, strict=True)))
        tally.messages += sign * messages
        tally.sms_segments += sign * segments
        if sign > 0:
            tally.error_example = max(tally.error_example, example)
        if tally.messages > 0:
            tally.save()
        elif tally.pk is not None:
            tally.delete()
