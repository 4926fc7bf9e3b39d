"""What keeps a finished, old enough message in the hot tables for now, each with its reason.

Deliveries' own: a message another message still depends on (its foreign key protects it) and one a suppression
entry points to (the entry says which message it followed). The apps above add theirs with `archive_hold`
(analytics: events its rollups have not counted yet; campaigns: messages of a campaign not yet over), as they
register other hooks with the layer below them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..db.lookups import among
from ..models import Message, Suppression


@dataclass(frozen=True)
class ArchiveCandidates:
    """One chunk's finished messages (rows by id, every field by attname) and their events' ids by message."""

    messages: Mapping[int, dict[str, Any]]
    event_ids: Mapping[int, Sequence[int]]


# A hold: the candidates it keeps back, each id with the reason (a short phrase: "waits for ...").
Hold = Callable[[ArchiveCandidates], Mapping[int, str]]
_holds: list[Hold] = []


def archive_hold(hold: Hold) -> Hold:
    """Register `hold`, asked about every chunk of messages about to be archived, in the archiving transaction.
    Registering the same function twice keeps one. Returns it, so it can decorate it."""
    if hold not in _holds:
        _holds.append(hold)
    return hold


def held_back(candidates: ArchiveCandidates) -> dict[int, str]:
    """The candidates to keep, each with its reason. A message kept keeps the message it depends on too (the
    foreign key), and that one its own, and so on."""
    held: dict[int, str] = {}
    for hold in (_suppressed_by_it, *_holds, _depended_on):
        for pk, reason in hold(candidates).items():
            held.setdefault(pk, reason)
    parents: dict[int, int] = {
        pk: row["depends_on_id"] for pk, row in candidates.messages.items() if row["depends_on_id"] is not None
    }
    todo = list(held)
    while todo:
        parent = parents.get(todo.pop())
        if parent is not None and parent in candidates.messages and parent not in held:
            held[parent] = "a message that depends on it is kept"
            todo.append(parent)
    return held


def _depended_on(candidates: ArchiveCandidates) -> dict[int, str]:
    """Messages on which a message outside the chunk depends."""
    ids = set(candidates.messages)
    dependents = Message.objects.filter(among("depends_on_id", ids)).values_list("pk", "depends_on_id")
    return {parent: "a message that depends on it is kept" for pk, parent in dependents if pk not in ids}


def _suppressed_by_it(candidates: ArchiveCandidates) -> dict[int, str]:
    entries = Suppression.objects.filter(among("message_id", candidates.messages))
    return dict.fromkeys(entries.values_list("message_id", flat=True), "a suppression entry points to it")
