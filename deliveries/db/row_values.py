"""Per-row values in one UPDATE: each row named by its primary key gets its own value for some columns.

`UPDATE ... SET col = v.column2 FROM unnest(%s::bigint[], %s::text[]) AS v(column1, column2) WHERE pk = v.column1`
on PostgreSQL, one array per column, so the statement's text (and its parse) is the same whatever the number of
rows; `FROM (VALUES (%s, %s), ...)` on SQLite 3.33+. A CASE expression would do the same in the ORM, but costs a
tree of expressions per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from .fields import column_type, fields_by_name
from .lookups import array_param

# {field name: {pk: value}}: the rows named, and each one's value for the field.
PerRow = Mapping[str, Mapping[int, Any]]


def with_row_values(
    model: type[models.Model], connection: BaseDatabaseWrapper, sql: str, params: Sequence[Any], per_row: PerRow
) -> tuple[str, list[Any]]:
    """The UPDATE `sql` (as the ORM compiled it, with a WHERE) rewritten to take `per_row`'s values as well; only
    the rows `per_row` names are updated."""
    quote = connection.ops.quote_name
    by_name = fields_by_name(model)
    fields = [by_name[name] for name in per_row]
    pks = list(next(iter(per_row.values())))
    head, found, where = sql.partition(" WHERE ")
    if not found:
        raise ValueError("per-row values need a filtered update")
    set_params = list(params)[: head.count("%s")]
    where_params = list(params)[head.count("%s") :]
    assignments = ", ".join(f"{quote(field.column)} = v.column{i + 2}" for i, field in enumerate(fields))
    pk_ref = f"{quote(model._meta.db_table)}.{quote(model._meta.pk.column)}"
    if connection.vendor == "postgresql":
        db_types = [column_type(field, connection) for field in [model._meta.pk, *fields]]
        arrays = [f"%s::{db_type}[]" for db_type in db_types]
        names = ", ".join(f"column{i + 1}" for i in range(len(arrays)))
        columns = row_arrays(model, connection, per_row)
        source = f"unnest({', '.join(arrays)}) AS v({names})"
        sql = f"{head}, {assignments} FROM {source} WHERE {pk_ref} = v.column1 AND {where}"
        return sql, [*set_params, *columns, *where_params]
    row_params: list[Any] = []
    for pk in pks:
        row_params.append(pk)
        row_params.extend(field.get_db_prep_value(per_row[field.name][pk], connection) for field in fields)
    row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    rows = ", ".join([row] * len(pks))
    sql = f"{head}, {assignments} FROM (VALUES {rows}) AS v WHERE {pk_ref} = v.column1 AND {where}"
    return sql, [*set_params, *row_params, *where_params]


def row_arrays(model: type[models.Model], connection: BaseDatabaseWrapper, per_row: PerRow) -> list[Any]:
    """PostgreSQL: the arrays `unnest` reads per-row values from: the primary keys, then one per field."""
    by_name = fields_by_name(model)
    fields = [by_name[name] for name in per_row]
    pks = list(next(iter(per_row.values())))
    db_types = [column_type(field, connection) for field in [model._meta.pk, *fields]]
    values_of = [pks]
    values_of += ([field.get_db_prep_value(per_row[field.name][pk], connection) for pk in pks] for field in fields)
    return [array_param(values, db_type) for values, db_type in zip(values_of, db_types, strict=True)]
