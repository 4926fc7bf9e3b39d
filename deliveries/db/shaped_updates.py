"""A transition's UPDATE on PostgreSQL, built by the ORM once per shape and reused as text after that.

Building the statement through the ORM (a queryset, its filter, the compiler) took about a quarter of a
millisecond, as long as a worker's whole share of a send, for text that is the same every time the same
transition runs; only the parameters change. So the first statement of each shape (fields written and which are
NULL or which expression, filters, per-row fields, columns returned) is built by the ORM as usual, and its
parameters worked out here too: if they are the same, later statements of that shape take the text as it was and
only work out their parameters. If not (a value this module does not know how to prepare), the shape always goes
through the ORM.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any, NamedTuple

from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql import UpdateQuery
from django.utils.datastructures import OrderedSet

from ..models import Message
from .events import StatusEvents
from .fields import column_type, fields_by_name
from .lookups import array_param, pk_among
from .row_values import PerRow, row_arrays
from .statements import Rows, Statement
from .updates import update_sql, update_statement


class ShapedUpdate(NamedTuple):
    """A transition's UPDATE as text, for every transition of the same shape, with the parameters of its
    expression values (`F("attempts") + 1`), which are the same for equal expressions."""

    sql: str
    expression_params: dict[str, list[Any]]

    def params(
        self,
        connection: BaseDatabaseWrapper,
        ids: Sequence[int],
        from_status: str,
        extra_filter: Mapping[str, Any],
        updates: Mapping[str, Any],
        per_row: PerRow,
    ) -> list[Any]:
        """The statement's parameters, in the order Django's compiler gives them."""
        by_name = fields_by_name(Message)
        params: list[Any] = []
        for name, value in updates.items():
            if hasattr(value, "resolve_expression"):
                params += self.expression_params[name]
            elif value is not None:  # None is written as NULL in the text
                params.append(by_name[name].get_db_prep_save(value, connection))
        if per_row:
            params += row_arrays(Message, connection, per_row)
        params += [array_param(list(ids), column_type(Message._meta.pk, connection)), from_status]
        for lookup, value in sorted(extra_filter.items()):  # the order of Q's keyword arguments
            name, _, kind = lookup.partition("__")
            field = by_name[name]
            if kind == "in":
                params += [field.get_db_prep_value(item, connection) for item in OrderedSet(value)]
            elif value is not None:
                params.append(field.get_db_prep_value(value, connection))
        return params


# By shape: the UPDATE's text, or None for a shape whose parameters this module cannot work out itself.
_shaped_updates: dict[tuple[Any, ...], ShapedUpdate | None] = {}
SHAPED_UPDATES_MAX = 500


def shaped_updates_forget() -> None:
    """Forget every shape learnt (tests start from none)."""
    _shaped_updates.clear()


def shaped_updates_learnt() -> list[ShapedUpdate | None]:
    """The statements kept, one per shape seen; None for a shape that always goes through the ORM."""
    return list(_shaped_updates.values())


def _update_shape(
    database: str,
    updates: Mapping[str, Any],
    extra_filter: Mapping[str, Any],
    per_row: PerRow,
    result_fields: Sequence[models.Field[Any, Any]],
) -> tuple[Any, ...] | None:
    written = tuple(
        (name, value if hasattr(value, "resolve_expression") else value is None) for name, value in updates.items()
    )
    filters = []
    for lookup, value in sorted(extra_filter.items()):
        kind = lookup.partition("__")[2]
        if kind == "in" and isinstance(value, set | frozenset | list | tuple) and None not in value:
            filters.append((lookup, len(OrderedSet(value))))  # one placeholder per value
        elif kind in ("", "gt", "gte", "lt", "lte"):
            filters.append((lookup, value is None))  # `= NULL` is `IS NULL`, without a parameter
        else:
            return None
    shape = (database, written, tuple(filters), tuple(per_row), tuple(field.name for field in result_fields))
    try:
        hash(shape)
    except TypeError:  # an expression that cannot be compared
        return None
    return shape


def update_by_shape(
    database: str,
    ids: Sequence[int],
    from_status: str,
    extra_filter: Mapping[str, Any],
    updates: dict[str, Any],
    per_row: PerRow,
    events: StatusEvents,
    result_fields: Sequence[models.Field[Any, Any]],
) -> Generator[Statement, Rows, Rows]:
    """Steps (see statements) of a transition's UPDATE of the messages `ids` in `from_status`, with its events;
    returns the rows it moved, as `result_fields`."""
    connection = connections[database]
    shape = _update_shape(database, updates, extra_filter, per_row, result_fields)
    shaped = _shaped_updates.get(shape) if shape is not None else None
    if shaped is not None:
        params = shaped.params(connection, ids, from_status, extra_filter, updates, per_row)
        return (yield update_statement(connection, Message, shaped.sql, params, events))
    queryset = Message.objects.filter(pk_among(ids, status=from_status), **extra_filter)
    sql, params = update_sql(queryset, updates, per_row, result_fields)
    if not sql:
        return []
    if shape is not None and shape not in _shaped_updates and len(_shaped_updates) < SHAPED_UPDATES_MAX:
        candidate = ShapedUpdate(sql, _expression_params(connection, updates))
        same = candidate.params(connection, ids, from_status, extra_filter, updates, per_row) == params
        _shaped_updates[shape] = candidate if same else None
    return (yield update_statement(connection, Message, sql, params, events))


def _expression_params(connection: BaseDatabaseWrapper, updates: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The parameters of the expressions among `updates`, compiled as the update compiler compiles them."""
    query = UpdateQuery(Message)
    compiler = query.get_compiler(connection=connection)
    params = {}
    for name, value in updates.items():
        if hasattr(value, "resolve_expression"):
            resolved = value.resolve_expression(query, allow_joins=False, for_save=True)
            params[name] = list(compiler.compile(resolved)[1])
    return params
