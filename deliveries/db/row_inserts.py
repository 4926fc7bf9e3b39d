"""Writing many rows in few statements, without building a model instance per row.

`bulk_create` spends most of its time in Python, preparing every field of every instance (about 0.3 ms a
message on this machine). On PostgreSQL this module reserves the ids from the table's sequence in one SELECT and
streams the rows with COPY, so 5,000 messages and their events cost three statements and little Python. Other
databases go through `bulk_create`, which gives the same rows. Rows are dicts of field names (or attnames) to
values, as for `Model(**values)`; fields left out get their model default.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import islice, repeat
from typing import Any, NamedTuple, TypeVar, cast

from django.db import connection, models

from .features import row_with_event_insert_is_one_statement
from .fields import fields_by_name


def _columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


Row = TypeVar("Row", bound=models.Model)

_MISSING = object()
_NOW = object()  # the default of auto_now fields: the `now` of the insert
PLAIN, RELATION, JSON, DATETIME = range(4)


class _Column(NamedTuple):
    field: models.Field[Any, Any]
    name: str
    attname: str  # a row may give a value under either name
    quoted: str
    default: Any  # _NOW, a callable default, or the default itself
    kind: int  # how a value is converted for the database


@functools.cache
def _column_plan(model: type[models.Model]) -> tuple[_Column, ...]:
    """The model's columns other than the primary key, and how to fill and convert each. Fixed per model."""
    plan = []
    for field in _columns(model):
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            default = _NOW
        elif field.has_default() and callable(field.default):
            default = field.default
        else:
            default = field.get_default()
        if field.is_relation:
            kind = RELATION
        elif isinstance(field, models.JSONField):
            kind = JSON
        elif isinstance(field, models.DateTimeField):
            kind = DATETIME
        else:
            kind = PLAIN
        plan.append(_Column(field, field.name, field.attname, connection.ops.quote_name(field.column), default, kind))
    return tuple(plan)


def _default(column: _Column, now: datetime) -> Any:
    default = column.default
    return now if default is _NOW else default() if callable(default) else default


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if not value and isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value)


def rows_insert(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime,
    ids: Sequence[int] | None = None,
    return_ids: bool = True,
) -> list[int]:
    """Insert `rows` (in the current transaction) and return their new primary keys, in order. On PostgreSQL,
    `ids` (from ids_reserve, at least one per row, ascending) are the keys to use. Without `return_ids` (and
    `ids`) the table numbers the rows itself and nothing is returned: no SELECT reserving keys, no keys read."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        instances = [model(**values) for values in rows]
        model._default_manager.bulk_create(instances, batch_size=1000)
        return [instance.pk for instance in instances] if return_ids else []
    if ids is not None:
        ids = list(ids[: len(rows)])
    elif return_ids:
        ids = ids_reserve(model, len(rows))
    return _copy_rows(model, rows, now=now, ids=ids)


def ids_reserve(model: type[models.Model], count: int) -> list[int]:
    """`count` new primary keys from the table's sequence (PostgreSQL), ascending, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _datetime_texts(values: Sequence[Any]) -> list[Any]:
    """Aware datetimes as ISO 8601 text, each distinct value formatted once: the rows of a chunk mostly share
    theirs (created_at, queued_at), and psycopg's datetime dumper was a third of the COPY's cost."""
    texts: dict[datetime, str] = {}
    converted = []
    for value in values:
        if isinstance(value, datetime) and value.tzinfo is not None:
            text = texts.get(value)
            if text is None:
                text = texts[value] = value.isoformat()
            value = text
        converted.append(value)
    return converted


def _copy_rows(
    model: type[models.Model], rows: Sequence[dict[str, Any]], *, now: datetime, ids: list[int] | None
) -> list[int]:
    """COPY `rows` in, with `ids` as their primary keys, or with the table's own if `ids` is None."""
    table = model._meta.db_table
    pk_column = model._meta.pk.column
    quote = connection.ops.quote_name
    # Columns no row sets take their default in every row: converted once, repeated as they are.
    present = set(rows[0])
    for row in rows:
        if row.keys() != present:  # most rows of a chunk have the same keys; comparing is cheaper than adding
            present.update(row)
    # Values are gathered a column at a time, one comprehension per column. A column that is NULL in every row
    # is left out of the COPY when the table gives NULL anyway (a nullable column without a database default):
    # a new message leaves most of its timestamps and links empty, and each column is work on both sides.
    column_names: list[str] = []
    column_values: list[Iterable[Any]] = []
    for column in _column_plan(model):
        name, attname, kind, default = column.name, column.attname, column.kind, _default(column, now)
        null_by_default = column.field.null and column.field.db_default is models.NOT_PROVIDED
        if name not in present and attname not in present:
            if default is None and null_by_default:
                continue
            value = _json_text(default) if kind == JSON else _datetime_texts([default])[0]
            column_names.append(column.quoted)
            column_values.append(repeat(value))
            continue
        if name in present and attname in present:  # a row may use either form
            values = [row[name] if name in row else row.get(attname, default) for row in rows]
        else:
            key = name if name in present else attname
            values = [row.get(key, default) for row in rows]
        if null_by_default and all(value is None for value in values):
            continue
        column_names.append(column.quoted)
        if kind == RELATION:
            values = [value.pk if isinstance(value, models.Model) else value for value in values]
        elif kind == JSON:
            values = [_json_text(value) for value in values]
        elif kind == DATETIME:
            values = _datetime_texts(values)
        column_values.append(values)
    if ids is not None:
        column_names.insert(0, quote(pk_column))
        column_values.insert(0, ids)
    columns = ", ".join(column_names)
    # COPY in text format: PostgreSQL parses each JSON and timestamp column from its text, as in an INSERT.
    # The COPY goes through psycopg's own cursor, so Django's wrapper is put back around it: a unique index's
    # refusal arrives as django.db.IntegrityError, as from any other statement, and callers can catch it.
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy,
    ):
        write_row = copy.write_row
        # The repeated constants never end: the rows are as many as the row count says.
        for record in islice(zip(*column_values), len(rows)):  # noqa: B905
            write_row(record)
    return ids or []


def row_with_event_insert(
    model: type[Row],
    values: dict[str, Any],
    *,
    event_model: type[models.Model],
    event_values: dict[str, Any],
    link: str,
    now: datetime,
) -> Row:
    """Insert one row and its first event, and return the row as an instance. On PostgreSQL that is a single
    statement (INSERT ... RETURNING inside a CTE feeding the event's INSERT), so it is atomic by itself; other
    databases take two INSERTs, in the caller's transaction. `link` is the event's foreign key to the row."""
    if not row_with_event_insert_is_one_statement():
        instance = model._default_manager.create(**values)
        event_model._default_manager.create(**{link: instance}, **event_values)
        return instance
    quote = connection.ops.quote_name
    row_columns, row_params = _insert_params(model, values, now)
    event_columns, event_params = _insert_params(event_model, event_values, now, skip=link)
    link_column = quote(fields_by_name(event_model)[link].column)
    pk_column = quote(model._meta.pk.column)
    # NULLs are written into the statement (psycopg would send them as the same literal): with its other
    # parameters alone the statement stays under psycopg's 50, so psycopg parses it once per process, not once
    # per message (that parse was a tenth of a POST /api/v1/messages/).
    placeholders = ", ".join("NULL" if value is None else "%s" for value in row_params)
    event_placeholders = ", ".join("NULL" if value is None else "%s" for value in event_params)
    sql = (
        f"WITH row AS (INSERT INTO {quote(model._meta.db_table)} ({', '.join(row_columns)}) "  # noqa: S608
        f"VALUES ({placeholders}) RETURNING {pk_column}) "
        f"INSERT INTO {quote(event_model._meta.db_table)} ({link_column}, {', '.join(event_columns)}) "
        f"SELECT row.{pk_column}, {event_placeholders} FROM row RETURNING {link_column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for value in row_params + event_params if value is not None])
        pk = cursor.fetchone()[0]
    instance = model(pk=pk, **{name: value for name, value in values.items()})
    for field in _columns(model):
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            setattr(instance, field.attname, now)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def _insert_params(
    model: type[models.Model], values: dict[str, Any], now: datetime, skip: str = ""
) -> tuple[list[str], list[Any]]:
    """Quoted columns and parameters for one row: every column, defaults filled in, JSON adapted as Django does."""
    columns, params = [], []
    adapt_json = connection.ops.adapt_json_value
    for column in _column_plan(model):
        if column.name == skip:
            continue
        value = values.get(column.name, _MISSING)
        if value is _MISSING:
            value = values.get(column.attname, _MISSING)
            if value is _MISSING:
                value = _default(column, now)
        if column.kind == RELATION:
            value = value.pk if isinstance(value, models.Model) else value
        elif column.kind == JSON:
            value = adapt_json(value, cast("models.JSONField[Any]", column.field).encoder)
        columns.append(column.quoted)
        params.append(value)
    return columns, params
