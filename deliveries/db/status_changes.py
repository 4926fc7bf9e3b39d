"""The statements behind one `deliveries.state.transition()`: a conditional UPDATE per source status and chunk of
ids, each returning the rows it moved, and one timeline event per moved row.

On PostgreSQL each UPDATE writes its rows' events itself (`events.StatusEvents`), and takes its text from the
shape cache (`shaped_updates`); elsewhere the events of every moved row are inserted after the UPDATEs
(`events.events_insert`), in the transition's transaction.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction

from ..models import Message
from .events import EventRow, StatusEvents, events_insert
from .lookups import pk_among
from .row_values import PerRow
from .shaped_updates import update_by_shape
from .statements import Rows, Statement
from .updates import instances_from_rows, loaded_fields, update_returning_steps


class StatusChange:
    """Messages moving to one status: its UPDATEs (`update_steps`, once per source status and chunk of ids),
    the events of the rows they moved, and the transaction they need."""

    def __init__(
        self,
        *,
        to_status: str,
        updates: dict[str, Any],
        extra_filter: Mapping[str, Any],
        per_row: PerRow,
        returning: Sequence[str],
        kind: str,
        code: str,
        detail: str,
        data: dict[str, Any] | None,
        events_by_id: Mapping[int, tuple[str, dict[str, Any]]],
        now: datetime,
    ) -> None:
        self.to_status, self.updates, self.extra_filter, self.per_row = to_status, updates, extra_filter, per_row
        self.returning = returning
        self.kind, self.code, self.detail, self.data, self.events_by_id = kind, code, detail, data, events_by_id
        self.now = now
        self.database = router.db_for_write(Message)
        # On PostgreSQL each UPDATE writes its rows' events itself, so a status change and its timeline line are one
        # statement, and a transition that decides nothing for dependents needs no transaction of its own: one
        # round trip instead of four (BEGIN, UPDATE, INSERT, COMMIT).
        self.inline_events = connections[self.database].vendor == "postgresql"
        self.result_fields = loaded_fields(Message, returning) if returning else [Message._meta.pk]
        self.events_after: list[EventRow] = []

    def transaction(self, *, deciding: bool) -> AbstractContextManager[Any]:
        """The transaction around the change: none when each UPDATE writes its own events and nothing is decided
        after them (`deciding`: a hook runs in the same transaction, see state.after_deciding_transition)."""
        if deciding or not self.inline_events:
            return transaction.atomic(using=self.database, savepoint=False)
        return nullcontext()

    def update_steps(self, ids: Sequence[int], from_status: str) -> Generator[Statement, Rows, list[Any]]:
        """Steps (see statements) of the UPDATE of the messages `ids` still in `from_status`; returns the moved
        messages: instances with the `returning` fields, or their ids."""
        values = {name: {pk: by_pk[pk] for pk in ids} for name, by_pk in self.per_row.items()}
        if self.inline_events:
            own = {pk: self.events_by_id[pk] for pk in ids if pk in self.events_by_id}
            events = StatusEvents(
                self.kind, from_status, self.to_status, self.code, self.detail, self.data, own, self.now
            )
            rows = yield from update_by_shape(
                self.database, ids, from_status, self.extra_filter, self.updates, values, events, self.result_fields
            )
        else:
            queryset = Message.objects.filter(pk_among(ids, status=from_status), **self.extra_filter)
            rows = yield from update_returning_steps(queryset, self.updates, values, self.result_fields)
        if self.returning:
            moved: list[Any] = instances_from_rows(Message, self.database, self.result_fields, rows)
        else:
            moved = [row[0] for row in rows]
        if not self.inline_events:
            for pk in [message.pk for message in moved] if self.returning else moved:
                event_detail, event_data = self.events_by_id.get(pk, (self.detail, self.data))
                self.events_after.append(
                    (pk, self.kind, from_status, self.to_status, self.code, event_detail, event_data or {})
                )
        return moved

    def events_write(self) -> None:
        """Insert the events the UPDATEs did not write themselves (not PostgreSQL), all in one go."""
        events_insert(self.events_after, created_at=self.now)
