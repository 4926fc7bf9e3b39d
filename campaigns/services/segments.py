"""Segments: saved attribute filters over contacts (read them with campaigns.selectors.segment_contacts)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ..models import ContactList, Segment
from ..segment_filters import segment_filters_clean


@transaction.atomic
def segment_create(
    *,
    name: str,
    filters: list[dict[str, Any]],
    match: str = Segment.Match.ALL,
    contact_list: ContactList | None = None,
    description: str = "",
) -> Segment:
    """Save a segment after checking its filters. Raises ValidationError naming each filter at fault."""
    segment = Segment(
        name=name,
        filters=segment_filters_clean(filters),
        match=match,
        contact_list=contact_list,
        description=description,
    )
    segment.full_clean()
    segment.save()
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, **fields: Any) -> Segment:
    """Change a segment's name, description, list, match or filters. Raises ValidationError."""
    if "filters" in fields:
        fields["filters"] = segment_filters_clean(fields["filters"])
    for name, value in fields.items():
        setattr(segment, name, value)
    segment.full_clean()
    segment.save()
    return segment
