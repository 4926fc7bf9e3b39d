"""Archiving waits for a campaign to be over: its messages stay in the hot tables until it is cancelled, or
completed with its owner's summary sent (the summary and the completion read its message rows)."""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import Q

from deliveries.archiving.holds import ArchiveCandidates, archive_hold

from ..models import Campaign

REASON = "its campaign is not over (or its summary not sent)"


@archive_hold
def campaign_not_over(candidates: ArchiveCandidates) -> Mapping[int, str]:
    campaign_ids = {row["campaign_id"] for row in candidates.messages.values()} - {None}
    if not campaign_ids:
        return {}
    over = Q(status=Campaign.Status.CANCELLED) | Q(status=Campaign.Status.COMPLETED, summary_sent_at__isnull=False)
    open_ids = set(Campaign.objects.filter(pk__in=campaign_ids).exclude(over).values_list("pk", flat=True))
    return {pk: REASON for pk, row in candidates.messages.items() if row["campaign_id"] in open_ids}
