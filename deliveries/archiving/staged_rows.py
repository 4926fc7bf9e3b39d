"""The rows of archive lines read but not yet restored, and their insertion: the restore's working set.

`staged_rows()` gives the one for the database in use. On PostgreSQL the lines are copied as they are into a
temporary table and the server turns them into rows (jsonb_populate_record), so Python never decodes a field:
parsing every line here was most of a restore's time. Elsewhere they are decoded here (lines.line_row) and written
by rows.rows_insert_exact. Either way the restore asks the same things: the waiting messages' few fields that
decide what happens to them, and the insertion of the chosen ones with some links emptied.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from django.db import DatabaseError, connection, models

from ..db.features import json_lines_built_by_database
from ..db.fields import fields_by_name
from ..db.lookups import array_param
from ..models import Message, MessageEvent
from .lines import LINE_HEAD, ArchiveLineError, line_row
from .rows import rows_insert_exact

# What the restore reads of a waiting message: its parent, its links, and what the tallies count.
MESSAGE_FIELDS = (
    "id",
    "depends_on_id",
    "template_id",
    "campaign_id",
    "batch_id",
    "created_by_id",
    "api_key_id",
    "idempotency_key_id",
    "status",
    "channel",
    "last_error_code",
    "last_error_message",
    "body",
)
MODELS = (Message, MessageEvent)
LABELS = [model._meta.label_lower for model in MODELS]
Emptied = Mapping[str, Collection[int]]  # attname -> the ids it must no longer hold


class StagedRows(Protocol):
    def add(self, lines: list[str]) -> None:
        """Stage a chunk's lines. Raises ArchiveLineError for a line that is not a row of MODELS."""

    def messages(self) -> dict[int, dict[str, Any]]:
        """The staged messages' MESSAGE_FIELDS by id."""

    def insert(
        self, ids: Collection[int], *, emptied: Mapping[str, Collection[int]], events_of: Collection[int]
    ) -> int:
        """Insert the staged messages `ids` (with each attname of `emptied` set NULL where it holds one of its ids),
        then the staged events of the messages `events_of` whose ids are not in the table; forget them all.
        Returns how many events went in."""


def staged_rows() -> StagedRows:
    return ServerStagedRows() if json_lines_built_by_database() else PythonStagedRows()


class PythonStagedRows:
    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.events: dict[int, list[dict[str, Any]]] = {}

    def add(self, lines: list[str]) -> None:
        for line in lines:
            model, row = line_row(line, allowed=MODELS)
            if model is Message:
                self.rows[row["id"]] = row
            else:
                self.events.setdefault(row["message_id"], []).append(row)

    def messages(self) -> dict[int, dict[str, Any]]:
        return {pk: {name: row[name] for name in MESSAGE_FIELDS} for pk, row in self.rows.items()}

    def insert(
        self, ids: Collection[int], *, emptied: Mapping[str, Collection[int]], events_of: Collection[int]
    ) -> int:
        rows = [self.rows.pop(pk) for pk in sorted(ids)]
        for attname, missing in emptied.items():
            for row in rows:
                if row[attname] in missing:
                    row[attname] = None
        rows_insert_exact(Message, rows)
        for pk in events_of:
            self.rows.pop(pk, None)  # a message already in the table: done with, not staged for a later chunk
        events = [event for pk in events_of for event in self.events.pop(pk, [])]
        present = set(MessageEvent.objects.filter(pk__in=[e["id"] for e in events]).values_list("pk", flat=True))
        new = sorted((event for event in events if event["id"] not in present), key=lambda event: event["id"])
        rows_insert_exact(MessageEvent, new)
        return len(new)


class ServerStagedRows:
    """PostgreSQL: the lines in a temporary table of this connection (`archive_restore_lines`), kept until their
    rows are inserted; a message waiting for its parent stays there across chunks."""

    TABLE = "archive_restore_lines"

    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.TABLE}")
            cursor.execute(f"CREATE TEMPORARY TABLE {self.TABLE} (model text, pk bigint, message bigint, line jsonb)")

    def add(self, lines: list[str]) -> None:
        staged = []
        for line in lines:
            # The label, id and (for an event) message lead every line, as both lines.row_line and PostgreSQL
            # write them: read here, they cost no UPDATE of the staged rows.
            head = LINE_HEAD.match(line)
            if head is None:
                raise ArchiveLineError("not an archived row (it does not start with its model, pk and fields)")
            if head["model"] not in LABELS:
                raise ArchiveLineError(f"rows of {head['model']} are not restored by this command")
            message = head["message"]
            staged.append((head["model"], int(head["pk"]), int(message) if message not in (None, "null") else None))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SAVEPOINT archive_lines")
                copy_sql = f"COPY {self.TABLE} (model, pk, message, line) FROM STDIN"
                with cursor.cursor.copy(copy_sql) as copy:
                    for (model, pk, message), line in zip(staged, lines, strict=True):
                        copy.write_row((model, pk, message, line))
                cursor.execute("RELEASE SAVEPOINT archive_lines")
        except DatabaseError as error:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK TO SAVEPOINT archive_lines")
            raise ArchiveLineError(f"not an archived row ({str(error).splitlines()[0]})") from error

    def messages(self) -> dict[int, dict[str, Any]]:
        fields = {field.attname: field for field in Message._meta.concrete_fields}
        selected = ", ".join(
            f"line->'fields'->>'{fields[name].name}'" if name != "id" else "pk" for name in MESSAGE_FIELDS
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {selected} FROM {self.TABLE} WHERE model = 'deliveries.message'")  # noqa: S608
            rows = cursor.fetchall()
        integers = {name for name in MESSAGE_FIELDS if name == "id" or name.endswith("_id")}
        found = {}
        for values in rows:
            row = {
                name: (int(value) if value is not None and name in integers else value)
                for name, value in zip(MESSAGE_FIELDS, values, strict=True)
            }
            found[row["id"]] = row
        return found

    def insert(
        self, ids: Collection[int], *, emptied: Mapping[str, Collection[int]], events_of: Collection[int]
    ) -> int:
        with connection.cursor() as cursor:
            if ids:
                cursor.execute(*self._insert_sql(Message, "deliveries.message", ids))
                for attname, missing in emptied.items():
                    if missing:
                        column = connection.ops.quote_name(fields_by_name(Message)[attname].column)
                        cursor.execute(
                            f"UPDATE deliveries_message SET {column} = NULL "  # noqa: S608
                            f"WHERE id = ANY(%s::bigint[]) AND {column} = ANY(%s::bigint[])",
                            [array_param(list(ids), "bigint"), array_param(list(missing), "bigint")],
                        )
            inserted = 0
            if events_of:
                sql, params = self._insert_sql(MessageEvent, "deliveries.messageevent", events_of, by="message")
                cursor.execute(
                    sql.replace(
                        "ORDER BY",
                        "AND NOT EXISTS (SELECT 1 FROM deliveries_messageevent e WHERE e.id = l.pk) ORDER BY",
                    ),
                    params,
                )
                inserted = cursor.rowcount
            done = array_param(list({*ids, *events_of}), "bigint")
            cursor.execute(
                f"DELETE FROM {self.TABLE} WHERE (model = 'deliveries.message' AND pk = ANY(%s::bigint[])) "  # noqa: S608
                "OR message = ANY(%s::bigint[])",
                [done, done],
            )
        return inserted

    def _insert_sql(
        self, model: type[models.Model], label: str, ids: Collection[int], by: str = "pk"
    ) -> tuple[str, list[Any]]:
        """INSERT ... SELECT of the staged rows of `model` whose `by` (pk, or message) is among `ids`: each line's
        fields renamed to their columns (a foreign key's name to its column) and typed by jsonb_populate_record."""
        table = connection.ops.quote_name(model._meta.db_table)
        renamed = [
            f"'{field.column}', l.line->'fields'->'{field.name}'"
            for field in model._meta.concrete_fields
            if field.is_relation
        ]
        relations = [f"'{field.name}'" for field in model._meta.concrete_fields if field.is_relation]
        record = (
            f"(l.line->'fields') - ARRAY[{', '.join(relations)}]::text[] "
            f"|| jsonb_build_object('{model._meta.pk.column}', l.pk, {', '.join(renamed)})"
        )
        columns = ", ".join(connection.ops.quote_name(field.column) for field in model._meta.concrete_fields)
        sql = (
            f"INSERT INTO {table} ({columns}) SELECT {', '.join('r.' + connection.ops.quote_name(f.column) for f in model._meta.concrete_fields)} "  # noqa: E501, S608
            f"FROM {self.TABLE} l, jsonb_populate_record(NULL::{table}, {record}) r "
            f"WHERE l.model = '{label}' AND l.{by} = ANY(%s::bigint[]) ORDER BY l.pk"
        )
        return sql, [array_param(list(ids), "bigint")]
