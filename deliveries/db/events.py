"""Every write of a message's timeline (`MessageEvent` rows) goes through this module.

- A status change: on PostgreSQL the transition's UPDATE writes its rows' events itself (`StatusEvents`, built here
  and placed in the statement by `updates.update_statement`); elsewhere `events_insert` writes them after the
  UPDATEs, in the same transaction.
- A new message: its `created` event with the row (`created_message_insert`), or a bulk chunk's events after its
  rows (`created_events_insert`).
- A provider's report (`report_event_insert`), unique per message and dedupe key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from ..models import Message, MessageEvent, Status
from .fields import fields_by_name
from .row_inserts import row_with_event_insert, rows_insert

EVENT_COLUMNS = ("message", "kind", "from_status", "to_status", "code", "detail", "data", "dedupe_key", "created_at")

# A status change's event as events_insert takes it: message id, kind, from, to, code, detail, data.
EventRow = tuple[int, str, str, str, str, str, dict[str, Any]]


@dataclass(frozen=True)
class StatusEvents:
    """The timeline events of one status change, written by the UPDATE that makes it (PostgreSQL): one for each
    row it moved, with the shared detail and data, or the row's own from `by_id` ({pk: (detail, data)})."""

    kind: str
    from_status: str
    to_status: str
    code: str
    detail: str
    data: dict[str, Any] | None
    by_id: Mapping[int, tuple[str, dict[str, Any] | None]]
    created_at: datetime

    def insert_from(self, moved: str, pk: str, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        """An INSERT of the events of the rows in `moved` (a CTE with their primary key column `pk`)."""
        quote = connection.ops.quote_name
        by_name = fields_by_name(MessageEvent)
        fields = [by_name[name] for name in EVENT_COLUMNS]
        columns = ", ".join(quote(field.column) for field in fields)
        stamp = fields[-1].get_db_prep_value(self.created_at, connection)
        # Rows with an event of their own come as one JSON parameter, as in events_insert.
        own = json.dumps([[pk_, detail, data or {}] for pk_, (detail, data) in self.by_id.items()])
        sql = (
            f"INSERT INTO {quote(MessageEvent._meta.db_table)} ({columns}) "  # noqa: S608 - our own names
            f"SELECT {moved}.{pk}, %s, %s, %s, %s, COALESCE(own.r->>1, %s), COALESCE(own.r->2, %s::jsonb), '', %s "
            f"FROM {moved} LEFT JOIN jsonb_array_elements(%s::jsonb) AS own(r) ON (own.r->>0)::bigint = {moved}.{pk}"
        )
        shared = [self.kind, self.from_status, self.to_status, self.code, self.detail, json.dumps(self.data or {})]
        return sql, [*shared, stamp, own]


def events_insert(rows: Sequence[EventRow], *, created_at: datetime) -> None:
    """Timeline events (message id, kind, from, to, code, detail, data), in one multi-row INSERT per 500.

    What bulk_create() would write, without a model instance and its save machinery per row: at thousands of
    messages a second, the events are most of the worker's database work.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(MessageEvent)]
    by_name = fields_by_name(MessageEvent)
    fields = [by_name[name] for name in EVENT_COLUMNS]
    data_field = fields[6]
    stamp = fields[-1].get_db_prep_value(created_at, connection)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    table = connection.ops.quote_name(MessageEvent._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # All rows as one JSON parameter: the statement's text is the same whatever the number of rows
            # (psycopg parses a query with more than 50 parameters afresh each time), and json.dumps writes the
            # lot in C, where psycopg's array dumper quoted and escaped each value in Python (37 µs a row).
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608 - our own table and column names
                "SELECT (r->>0)::bigint, r->>1, r->>2, r->>3, r->>4, r->>5, r->6, '', %s "
                "FROM jsonb_array_elements(%s::jsonb) AS r",
                [stamp, json.dumps(rows)],
            )
            return
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            params: list[Any] = []
            for pk, kind, from_status, to_status, code, detail, data in chunk:
                params += [pk, kind, from_status, to_status, code, detail]
                params += [data_field.get_db_prep_value(data, connection), "", stamp]
            values = ", ".join([row_sql] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", params)  # noqa: S608 - our names


def created_message_insert(values: dict[str, Any], *, detail: str, now: datetime, code: str = "") -> Message:
    """Insert one message (`values`, its status among them) with the first line of its timeline, and return it.
    `code` is the event's: why a message was created held. On PostgreSQL one statement, atomic by itself
    (features.row_with_event_insert_is_one_statement)."""
    return row_with_event_insert(
        Message,
        values,
        event_model=MessageEvent,
        event_values={"to_status": values["status"], "code": code, "detail": detail, "created_at": now},
        link="message",
        now=now,
    )


def created_events_insert(
    ids: Sequence[int],
    rows: Sequence[dict[str, Any]],
    *,
    detail: str,
    now: datetime,
    notes: Mapping[int, str] | None = None,
) -> None:
    """The first timeline line of each message stored in bulk (`ids` and the column values of their `rows`): its
    status, or the error that failed it before it was ever sent, or why the guard held it. `notes` ({position in
    rows: sentence}) adds a row's own sentence to the detail (why its send time moved). The table numbers the events
    (rows_insert)."""
    notes = notes or {}
    # Choices members looked up once: an enum attribute costs about as much as the rest of an event's dict.
    failed, held = Status.FAILED, Status.HELD
    status_kind, error_kind = MessageEvent.Kind.STATUS, MessageEvent.Kind.ERROR

    def event(pk: int, row: dict[str, Any], note: str | None) -> dict[str, Any]:
        status = row["status"]
        if status != failed and status != held:
            said = f"{detail} {note}" if note else detail
            return {"message_id": pk, "kind": status_kind, "to_status": status, "detail": said, "created_at": now}
        # Failed before it was ever sent, or held by the cost guard at creation: why, with its code.
        if status == failed:
            kind, reason = error_kind, f"Not sent: {row['last_error_message']}"
        else:
            kind, reason = status_kind, row["last_error_message"]
        return {
            "message_id": pk,
            "kind": kind,
            "to_status": status,
            "code": row["last_error_code"],
            "detail": f"{detail} {reason}",
            "created_at": now,
        }

    rows_insert(
        MessageEvent,
        [event(pk, row, notes.get(position)) for position, (pk, row) in enumerate(zip(ids, rows, strict=True))],
        now=now,
        return_ids=False,
    )


def report_event_insert(
    message: Message, *, kind: str, code: str, detail: str, data: dict[str, Any], dedupe_key: str
) -> MessageEvent:
    """A provider's report on the message's timeline. A second report with the same non-empty `dedupe_key` for the
    message raises IntegrityError (the `message_event_dedupe` constraint): the caller's savepoint decides."""
    return MessageEvent.objects.create(
        message=message, kind=kind, code=code, detail=detail, data=data, dedupe_key=dedupe_key
    )


def event_texts_replace(changes: Mapping[int, tuple[str, dict[str, Any]]]) -> None:
    """Give events a new detail and data ({event id: (detail, data)}): an erased person's timeline, blanked."""
    events = [MessageEvent(pk=pk, detail=detail, data=data) for pk, (detail, data) in changes.items()]
    MessageEvent.objects.bulk_update(events, ["detail", "data"], batch_size=500)
