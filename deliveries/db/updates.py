"""UPDATE ... RETURNING through the ORM's compiler: which rows an update changed, and those rows as instances.

`queryset.update()` only counts the rows it changed; a transition must know which ones, so that the database picks
the single winner when two processes race. The statement is the one the ORM compiles for the update, with a
RETURNING clause, per-row values (`row_values`) and, on PostgreSQL, the moved rows' timeline events written by the
same statement (`events.StatusEvents`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, cast

from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet
from django.db.models.sql import UpdateQuery

from .events import StatusEvents
from .row_values import PerRow, with_row_values
from .statements import Rows, Statement, run


def update_returning_ids(
    queryset: QuerySet[Any],
    values: dict[str, Any],
    per_row: PerRow | None = None,
    *,
    events: StatusEvents | None = None,
) -> list[int]:
    """`queryset.update(**values)`, returning the primary keys of the rows it changed.

    `per_row` gives columns a value of their own for each row, `{field name: {pk: value}}`, written in the same
    statement (see row_values); only rows it names are updated. With `events` (PostgreSQL), the same statement adds
    a timeline event for each row it changed.
    """
    pk = queryset.model._meta.pk
    steps = update_returning_steps(queryset, values, per_row, [pk], events)
    return [row[0] for row in run(steps)]


def update_returning_steps(
    queryset: QuerySet[Any],
    values: dict[str, Any],
    per_row: PerRow | None,
    returning: Sequence[models.Field[Any, Any]],
    events: StatusEvents | None = None,
) -> Generator[Statement, Rows, Rows]:
    """update_returning_ids() as steps (see statements), returning the `returning` columns of the changed rows."""
    sql, params = update_sql(queryset, values, per_row, returning)
    if not sql:
        return []
    return (yield update_statement(connections[queryset.db], queryset.model, sql, params, events))


def update_sql(
    queryset: QuerySet[Any], values: dict[str, Any], per_row: PerRow | None, returning: Sequence[models.Field[Any, Any]]
) -> tuple[str, list[Any]]:
    """The UPDATE ... RETURNING of `queryset.update(**values)`, with `per_row` values; no text if it matches
    nothing."""
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(values)
    sql, params = query.get_compiler(queryset.db).as_sql()
    if not sql:
        return "", []
    connection = connections[queryset.db]
    if per_row:
        sql, params = with_row_values(queryset.model, connection, sql, params, per_row)
    table = connection.ops.quote_name(queryset.model._meta.db_table)
    columns = ", ".join(f"{table}.{connection.ops.quote_name(field.column)}" for field in returning)
    return f"{sql} RETURNING {columns}", list(params)


def update_statement(
    connection: BaseDatabaseWrapper,
    model: type[models.Model],
    sql: str,
    params: list[Any],
    events: StatusEvents | None,
) -> Statement:
    """The UPDATE ... RETURNING `sql` as a statement, writing `events` for the rows it moved when given."""
    if events is not None:
        # The moved rows' timeline events are written by the same statement, from what the UPDATE returned.
        pk = connection.ops.quote_name(model._meta.pk.column)
        insert, insert_params = events.insert_from("moved", pk, connection)
        sql = f"WITH moved AS ({sql}), recorded AS ({insert}) SELECT * FROM moved"  # noqa: S608 - our own SQL
        params = [*params, *insert_params]
    return Statement(connection, sql, params)


def loaded_fields(model: type[models.Model], fields: Sequence[str]) -> list[models.Field[Any, Any]]:
    """The model's columns an UPDATE should return to load `fields` (and the primary key), in the model's order."""
    return [field for field in model._meta.concrete_fields if field.primary_key or field.name in fields]


def instances_from_rows(
    model: type[models.Model], database: str, loaded: Sequence[models.Field[Any, Any]], rows: Rows
) -> list[Any]:
    """Rows an UPDATE returned (`loaded` fields, the primary key among them) as model instances, the other fields
    deferred: what a SELECT after the UPDATE would give, without the SELECT."""
    connection = connections[database]
    columns = [field.get_col(model._meta.db_table) for field in loaded]
    # The converters the ORM applies to these columns when it reads them (JSON text, SQLite's datetimes, ...).
    converters = [
        (index, convert, column)
        for index, column in enumerate(columns)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    ]
    # A set: from_db asks each of the model's fields whether it was loaded (a list made that a tenth of a claim).
    attnames = frozenset(field.attname for field in loaded)
    instances = []
    for row in rows:
        values = list(row)
        for index, convert, column in converters:
            values[index] = convert(values[index], column, connection)
        instances.append(model.from_db(database, attnames, values))
    return instances
