"""Conditions on many values, written so that PostgreSQL parses the statement once and finds the rows by id.

`among("pk", ids)` is `pk__in=ids` as one array parameter (`pk = ANY(%s)`) on PostgreSQL and `IN (...)`
elsewhere; with `status=`, the status is compared through `(SELECT %s)`, which the planner cannot see, so the ids'
index drives the lookup (docs/performance.md, *State transitions in SQL*).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Lookup, Q
from django.db.models.sql.compiler import SQLCompiler

INTEGER_TYPES = {"integer", "bigint", "smallint"}
TEXT_TYPES = ("varchar", "text")


# django-stubs make Lookup generic (its output type); Django's class takes no subscript at run time.
class AnyOf(Lookup):  # type: ignore[type-arg]
    """`column = ANY(%s)` with the values as one array parameter on PostgreSQL, `IN (...)` elsewhere.

    psycopg splits and re-quotes a statement with more than 50 parameters every time it runs (it caches only
    smaller ones), and a wave's `pk IN (...)` of a hundred ids was most of the worker's database CPU."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            raise EmptyResultSet  # matches nothing, as `__in=[]` does
        if connection.vendor == "postgresql":
            db_type = self.lhs.output_field.db_type(connection)
            return f"{lhs} = ANY(%s::{db_type}[])", [*lhs_params, array_param(values, db_type)]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


def array_param(values: list[Any], db_type: str) -> Any:
    """A PostgreSQL array parameter. Integers and strings go as the array's text, `{1,2,3}` or `{"a","b"}`, which
    costs a join; psycopg's array dumper checks every item for quoting in Python, about a microsecond each."""
    if db_type in INTEGER_TYPES:
        return "{" + ",".join(map(str, map(int, values))) + "}"
    if db_type.startswith(TEXT_TYPES) and all(type(value) is str for value in values):
        # Each element in double quotes, where only the double quote and the backslash need escaping.
        quoted = [value.replace("\\", "\\\\").replace('"', '\\"') for value in values]
        return '{"' + '","'.join(quoted) + '"}' if quoted else "{}"
    return values


# django-stubs make Lookup generic (its output type); Django's class takes no subscript at run time.
class EqualsUnplanned(Lookup):  # type: ignore[type-arg]
    """`column = (SELECT %s)`: equality with a value the query planner does not see, so no partial index on the
    column can serve it.

    Used beside a list of primary keys, which should drive the lookup. A status's partial index (message_queued_at,
    message_sending_lease, ...) holds an entry for every row that entered the status since the table was last
    vacuumed, and the planner's statistics, taken when few rows were queued or sending, call it tiny: it scanned
    the whole index on every claim instead of looking the ids up, so each claim cost more the longer the queue
    (7.8 ms against 0.6 ms for 21 rows with 15,000 queued). A subquery's value is known only when the statement
    runs, after the plan is made, which leaves the primary key's index as the only one to use."""

    lookup_name = "equals_unplanned"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = (SELECT %s)", [*lhs_params, self.rhs]


def among(field: str, values: Iterable[Any], *, status: str | None = None) -> Q:
    """`field__in=values`, as one parameter on PostgreSQL (see AnyOf); with `status`, only the rows in that status,
    found through `field`'s index whatever the planner thinks of the status's own (see EqualsUnplanned)."""
    condition = Q(AnyOf(F(field), list(values)))
    return condition & Q(EqualsUnplanned(F("status"), status)) if status is not None else condition


def pk_among(ids: Iterable[int], *, status: str | None = None) -> Q:
    """`pk__in=ids` as `among` writes it."""
    return among("pk", ids, status=status)
