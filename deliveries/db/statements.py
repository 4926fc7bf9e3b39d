"""Running the statements a piece of code yields, so that several such pieces can share one round trip.

A transition is written as a generator (its *steps*): it yields each `Statement` it needs and is sent back the
rows the statement returned. `run()` runs the steps one statement at a time. `run_together()` starts several
steps, sends their first statements to PostgreSQL in one psycopg pipeline (one round trip, one commit), and then
lets each go on alone: a worker records the calls that came back and claims the next wave this way.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, NamedTuple, TypeVar

from django.db.backends.base.base import BaseDatabaseWrapper


class Statement(NamedTuple):
    """A statement some steps ask to run; they are sent the rows it returns."""

    connection: BaseDatabaseWrapper
    sql: str
    params: list[Any]


# What a statement returns to the steps that yielded it.
Rows = list[tuple[Any, ...]]
Result = TypeVar("Result")
Steps = Generator[Statement, Rows, Result]

_NOT_STARTED: Any = object()


def run(steps: Steps[Result], rows: Rows = _NOT_STARTED) -> Result:
    """Run the statements `steps` yields, one at a time, sending each one's rows back; returns what it returns.
    With `rows`, `steps` has yielded its first statement already, which ran elsewhere and returned them."""
    try:
        statement = next(steps) if rows is _NOT_STARTED else steps.send(rows)
        while True:
            with statement.connection.cursor() as cursor:
                cursor.execute(statement.sql, statement.params)
                rows = cursor.fetchall()
            statement = steps.send(rows)
    except StopIteration as done:
        result: Result = done.value
        return result


def run_together(connection: BaseDatabaseWrapper, all_steps: Sequence[Steps[Result]]) -> list[Result]:
    """Run several steps, in order; returns what each returns. On PostgreSQL their first statements go to the
    server together, in one pipeline, and commit together (the caller makes sure none needs a transaction of its
    own); whatever else a step needs runs after, one statement at a time. Elsewhere each runs alone, in turn."""
    if connection.vendor != "postgresql":
        return [run(steps) for steps in all_steps]
    results: list[Any] = [None] * len(all_steps)  # each filled in below
    firsts: dict[int, Statement] = {}
    for index, steps in enumerate(all_steps):
        try:
            firsts[index] = next(steps)
        except StopIteration as done:
            results[index] = done.value
    rows = _run_pipelined(connection, list(firsts.values()))
    for index, first_rows in zip(firsts, rows, strict=True):
        results[index] = run(all_steps[index], first_rows)
    return results


def _run_pipelined(connection: BaseDatabaseWrapper, statements: list[Statement]) -> list[Rows]:
    """Run `statements` in one psycopg pipeline: sent together, committed together (one implicit transaction
    until the pipeline's sync), one round trip; returns each one's rows."""
    connection.ensure_connection()
    cursors = []
    try:
        with connection.wrap_database_errors, connection.connection.pipeline():
            for statement in statements:
                cursor = connection.cursor()
                cursors.append(cursor)
                cursor.execute(statement.sql, statement.params)
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()
