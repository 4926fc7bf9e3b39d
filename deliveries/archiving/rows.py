"""Rows written back with their own ids and every value as archived, and rows deleted by id, without the ORM's
per-instance work: `bulk_create` would stamp auto_now fields with the time of the restore, and `delete()` collects
every related row in Python before it deletes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.utils import timezone

from ..db.features import rows_copied_in
from ..db.lookups import among
from ..db.row_inserts import rows_insert

# Ids per DELETE statement (SQLite takes at most 32,766 parameters a statement).
DELETE_CHUNK = 5000


def rows_insert_exact(model: type[models.Model], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (every concrete field by attname, the primary key included) exactly as given."""
    if not rows:
        return
    pk = model._meta.pk.attname
    if rows_copied_in():
        # COPY, with every column given: no default and no auto_now stamp applies.
        values = [{key: value for key, value in row.items() if key != pk} for row in rows]
        rows_insert(model, values, now=timezone.now(), ids=[row[pk] for row in rows])
        return
    fields = list(model._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    params = [[field.get_db_prep_save(row[field.attname], connection) for field in fields] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})",  # noqa: S608
            params,
        )


def rows_delete(model: type[models.Model], column: str, values: Sequence[int]) -> int:
    """Delete the rows whose `column` (an attname) is among `values`; returns how many went."""
    deleted = 0
    for start in range(0, len(values), DELETE_CHUNK):
        part = list(values[start : start + DELETE_CHUNK])
        # _raw_delete: one DELETE, without delete()'s collection of related rows (the caller deleted them first).
        deleted += model._default_manager.filter(among(column, part))._raw_delete(connection.alias)
    return deleted
