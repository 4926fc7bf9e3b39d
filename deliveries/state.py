"""The message state machine: which status may follow which, and the one way to change it.

Every transition is a conditional `UPDATE ... WHERE status = <allowed source> RETURNING id`, so two processes
racing on the same message cannot both win: the database decides, and each caller learns exactly which rows it
moved. Both PostgreSQL and SQLite (3.35+) support RETURNING.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db import connections, router, transaction
from django.db.models import F, Lookup, Q, QuerySet
from django.db.models.sql import UpdateQuery
from django.utils import timezone
from django.utils.datastructures import OrderedSet

from .models import Message, MessageEvent, Status

TRANSITIONS: dict[str, frozenset[str]] = {
    # Paused: held by a paused campaign (workers only claim `queued` rows, so it is never sent).
    Status.SCHEDULED: frozenset({Status.QUEUED, Status.CANCELLED, Status.FAILED, Status.SUPPRESSED, Status.PAUSED}),
    # Back to scheduled is a deferral: a rate limit or an open circuit breaker; no attempt is spent.
    Status.QUEUED: frozenset(
        {Status.SENDING, Status.SCHEDULED, Status.CANCELLED, Status.FAILED, Status.SUPPRESSED, Status.PAUSED}
    ),
    # Back to scheduled is a retry after a transient error. Review: the worker died mid-call, outcome unknown.
    # Suppressed: the worker checks the suppression list before the call, so an opt-out that arrived after
    # queueing is still honoured. Delivered and undelivered straight from sending: a provider's receipt can
    # overtake the worker's own record of the send.
    Status.SENDING: frozenset(
        {
            Status.SENT,
            Status.FAILED,
            Status.SCHEDULED,
            Status.REVIEW,
            Status.SUPPRESSED,
            Status.DELIVERED,
            Status.UNDELIVERED,
        }
    ),
    Status.SENT: frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.FAILED}),
    Status.DELIVERED: frozenset(),
    Status.UNDELIVERED: frozenset(),
    # A person may retry a failed message from the admin or the API.
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.CANCELLED: frozenset(),
    Status.SUPPRESSED: frozenset(),
    # A person resends it or marks it failed or sent; the worker's late result or the provider's webhook may
    # also settle it.
    Status.REVIEW: frozenset({Status.QUEUED, Status.SENT, Status.FAILED, Status.DELIVERED, Status.UNDELIVERED}),
    # Released when its parent meets the condition (the dispatcher then queues it when due), or cancelled when
    # the parent can no longer meet it, or by a person (deliveries.services.dependencies).
    Status.WAITING: frozenset({Status.SCHEDULED, Status.CANCELLED}),
    # Held by a paused campaign: resuming puts it back to scheduled (the dispatcher queues it when due).
    Status.PAUSED: frozenset({Status.SCHEDULED, Status.CANCELLED}),
}

# Statuses a message only leaves through a person's action (or never).
FINAL_STATUSES = frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.CANCELLED, Status.SUPPRESSED})
# Statuses in which a message is still on its way out.
PENDING_STATUSES = frozenset({Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.PAUSED})
# Statuses that may decide what happens to a message's dependents (deliveries.services.dependencies).
DECIDING_STATUSES = frozenset(
    {Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.CANCELLED, Status.SUPPRESSED}
)
# Statuses a provider's receipt may move a message out of (sending: the receipt overtook the worker's record).
AWAITING_RECEIPT = frozenset({Status.SENDING, Status.SENT, Status.REVIEW})

# The timestamp column stamped when a message enters a status.
STAMP_FIELD = {
    Status.QUEUED: "queued_at",
    Status.SENDING: "sending_at",
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.UNDELIVERED: "failed_at",
    Status.FAILED: "failed_at",
    Status.CANCELLED: "cancelled_at",
}


class InvalidTransition(ValueError):
    """Raised when code asks for a transition the state machine does not have."""


def sources_for(to_status: str, from_statuses: Iterable[str] | None = None) -> list[str]:
    """The statuses a message may leave for `to_status`, narrowed to `from_statuses` when given."""
    allowed = [s for s, nexts in TRANSITIONS.items() if to_status in nexts]
    if from_statuses is None:
        return allowed
    wanted = list(from_statuses)
    if any(s not in allowed for s in wanted):
        raise InvalidTransition(f"cannot move a message from {sorted(wanted)} to {to_status!r}")
    return wanted


class AnyOf(Lookup):
    """`column = ANY(%s)` with the values as one array parameter on PostgreSQL, `IN (...)` elsewhere.

    psycopg splits and re-quotes a statement with more than 50 parameters every time it runs (it caches only
    smaller ones), and a wave's `pk IN (...)` of a hundred ids was most of the worker's database CPU."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            raise EmptyResultSet  # matches nothing, as `__in=[]` does
        if connection.vendor == "postgresql":
            db_type = self.lhs.output_field.db_type(connection)
            return f"{lhs} = ANY(%s::{db_type}[])", [*lhs_params, array_param(values, db_type)]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


INTEGER_TYPES = {"integer", "bigint", "smallint"}
TEXT_TYPES = ("varchar", "text")


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


class EqualsUnplanned(Lookup):
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

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = (SELECT %s)", [*lhs_params, self.rhs]


def among(field: str, values: Iterable[Any], *, status: str | None = None) -> Q:
    """`field__in=values`, as one parameter on PostgreSQL (see AnyOf); with `status`, only the rows in that status,
    found through `field`'s index whatever the planner thinks of the status's own (see EqualsUnplanned)."""
    condition = Q(AnyOf(F(field), list(values)))
    return condition & Q(EqualsUnplanned(F("status"), status)) if status is not None else condition


def pk_among(ids: Iterable[int], *, status: str | None = None) -> Q:
    return among("pk", ids, status=status)


def update_returning_ids(
    queryset: QuerySet,
    values: dict[str, Any],
    per_row: Mapping[str, Mapping[int, Any]] | None = None,
    *,
    events: StatusEvents | None = None,
) -> list[int]:
    """`queryset.update(**values)`, returning the primary keys of the rows it changed.

    `per_row` gives columns a value of their own for each row, `{field name: {pk: value}}`, written in the same
    statement through `UPDATE ... FROM unnest(...)` (PostgreSQL; `FROM (VALUES ...)` on SQLite 3.33+); only rows it
    names are updated. A CASE expression would do the same in the ORM, but costs a tree of expressions per row.
    With `events` (PostgreSQL), the same statement adds a timeline event for each row it changed.
    """
    pk = queryset.model._meta.pk
    return [row[0] for row in _update_returning(queryset, values, per_row, [pk], events)]


def _loaded_fields(model, fields: Sequence[str]) -> list:
    return [field for field in model._meta.concrete_fields if field.primary_key or field.name in fields]


def _instances(model, database: str, loaded: list, rows: list[tuple]) -> list[Any]:
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
        row = list(row)
        for index, convert, column in converters:
            row[index] = convert(row[index], column, connection)
        instances.append(model.from_db(database, attnames, row))
    return instances


def _update_returning(
    queryset: QuerySet, values: dict[str, Any], per_row, returning: list, events: StatusEvents | None = None
) -> list[tuple]:
    return _run(_update_returning_steps(queryset, values, per_row, returning, events))


def _update_returning_steps(
    queryset: QuerySet, values: dict[str, Any], per_row, returning: list, events: StatusEvents | None = None
) -> Generator[Statement, list[tuple], list[tuple]]:
    sql, params = _update_sql(queryset, values, per_row, returning)
    if not sql:
        return []
    return (yield _update_statement(connections[queryset.db], queryset.model, sql, params, events))


def _update_sql(queryset: QuerySet, values: dict[str, Any], per_row, returning: list) -> tuple[str, list[Any]]:
    """The UPDATE ... RETURNING of `queryset.update(**values)`, with `per_row` values (update_returning_ids)."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(queryset.db).as_sql()
    if not sql:
        return "", []
    connection = connections[queryset.db]
    if per_row:
        sql, params = _with_row_values(queryset.model, connection, sql, params, per_row)
    table = connection.ops.quote_name(queryset.model._meta.db_table)
    columns = ", ".join(f"{table}.{connection.ops.quote_name(field.column)}" for field in returning)
    return f"{sql} RETURNING {columns}", list(params)


class Statement(NamedTuple):
    """A statement a transition's steps ask to run; they are sent the rows it returns."""

    connection: Any
    sql: str
    params: list[Any]


def _update_statement(connection, model, sql: str, params: list[Any], events: StatusEvents | None) -> Statement:
    if events is not None:
        # The moved rows' timeline events are written by the same statement, from what the UPDATE returned.
        pk = connection.ops.quote_name(model._meta.pk.column)
        insert, insert_params = events.insert_from("moved", pk, connection)
        sql = f"WITH moved AS ({sql}), recorded AS ({insert}) SELECT * FROM moved"  # noqa: S608 - our own SQL
        params = [*params, *insert_params]
    return Statement(connection, sql, params)


_NOT_STARTED = object()

# A transition updates at most this many messages a statement.
UPDATE_CHUNK = 1000


def _run(steps: Generator[Statement, list[tuple], Any], rows: Any = _NOT_STARTED) -> Any:
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
        return done.value


def _with_row_values(model, connection, sql: str, params, per_row: Mapping[str, Mapping[int, Any]]):
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in per_row]
    pks = list(next(iter(per_row.values())))
    head, found, where = sql.partition(" WHERE ")
    if not found:
        raise ValueError("per-row values need a filtered update")
    set_params = list(params)[: head.count("%s")]
    where_params = list(params)[head.count("%s") :]
    assignments = ", ".join(f"{quote(field.column)} = v.column{i + 2}" for i, field in enumerate(fields))
    pk_ref = f"{quote(model._meta.db_table)}.{quote(model._meta.pk.column)}"
    if connection.vendor == "postgresql":
        # One array per column instead of a parameter per value (see AnyOf): the statement's text, and so its
        # parse, is the same whatever the number of rows.
        db_types = [field.db_type(connection) for field in [model._meta.pk, *fields]]
        arrays = [f"%s::{db_type}[]" for db_type in db_types]
        names = ", ".join(f"column{i + 1}" for i in range(len(arrays)))
        columns = _row_arrays(model, connection, per_row)
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


def _row_arrays(model, connection, per_row: Mapping[str, Mapping[int, Any]]) -> list[Any]:
    """PostgreSQL: the arrays `unnest` reads per-row values from: the primary keys, then one per field."""
    fields = [model._meta.get_field(name) for name in per_row]
    pks = list(next(iter(per_row.values())))
    db_types = [field.db_type(connection) for field in [model._meta.pk, *fields]]
    values_of = [pks]
    values_of += ([field.get_db_prep_value(per_row[field.name][pk], connection) for pk in pks] for field in fields)
    return [array_param(values, db_type) for values, db_type in zip(values_of, db_types, strict=True)]


def transition(
    message_ids: Sequence[int],
    *,
    to_status: str,
    from_statuses: Iterable[str] | None = None,
    detail: str = "",
    code: str = "",
    data: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    extra_filter: dict[str, Any] | None = None,
    kind: str = MessageEvent.Kind.STATUS,
    events_by_id: Mapping[int, tuple[str, dict[str, Any]]] | None = None,
    per_row: Mapping[str, Mapping[int, Any]] | None = None,
    settle_dependents: bool = True,
    returning: Sequence[str] = (),
) -> list[Any]:
    """Move the given messages to `to_status` wherever their current status allows it.

    Returns the ids that moved (the others were elsewhere, or taken by another process first) and records one
    timeline event for each. `fields` are written in the same UPDATE; `extra_filter` narrows the rows further (a
    worker's claim token, say), so a transition can depend on more than the status. `events_by_id` gives some
    messages their own event (detail, data) instead of the shared `detail` and `data`; `per_row` gives each
    message its own value for some fields (see update_returning_ids). `settle_dependents=False` skips looking for
    messages that wait for these ones, for a caller that knows there are none (the dispatcher's sweep would still
    settle one that appeared meanwhile). With `returning` (field names), the moved messages come back as instances
    with those fields as the update left them (the others deferred), instead of their ids.
    """
    return _run(_transition_steps(**locals()))


def transitions_together(*calls: dict[str, Any]) -> list[list[Any]]:
    """Run several transitions (each a dict of transition()'s arguments), in order; returns each one's result.

    On PostgreSQL, transitions that are one statement each (their events written by it, nothing to decide for
    dependents) go to the server together, in one pipeline: one round trip, and one commit for all of them (a
    worker records the calls that came back and claims the next wave in one). Whatever else a transition needs
    (a second source status for rows the first did not move, a transaction) runs after, as transition() runs it.
    """
    database = router.db_for_write(Message)
    connection = connections[database]
    calls = tuple({**transition.__kwdefaults__, **call} for call in calls)
    steps = [_transition_steps(**call) for call in calls]
    if connection.vendor != "postgresql" or len(calls) < 2 or not all(_one_statement(call) for call in calls):
        return [_run(step) for step in steps]
    results: list[Any] = [None] * len(steps)
    firsts: dict[int, Statement] = {}
    for index, step in enumerate(steps):
        try:
            firsts[index] = next(step)
        except StopIteration as done:
            results[index] = done.value
    rows = _run_pipelined(connection, list(firsts.values()))
    for index, first_rows in zip(firsts, rows, strict=True):
        results[index] = _run(steps[index], first_rows)
    return results


def _one_statement(call: dict[str, Any]) -> bool:
    """Whether this transition's first statement can go in a pipeline: no transaction around it (it decides
    nothing for dependents), at most one chunk of ids."""
    deciding = call["settle_dependents"] and call["to_status"] in DECIDING_STATUSES
    return not deciding and len(call["message_ids"]) <= UPDATE_CHUNK


def _run_pipelined(connection, statements: list[Statement]) -> list[list[tuple]]:
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


def _transition_steps(
    message_ids: Sequence[int],
    *,
    to_status: str,
    from_statuses: Iterable[str] | None,
    detail: str,
    code: str,
    data: dict[str, Any] | None,
    fields: dict[str, Any] | None,
    extra_filter: dict[str, Any] | None,
    kind: str,
    events_by_id: Mapping[int, tuple[str, dict[str, Any]]] | None,
    per_row: Mapping[str, Mapping[int, Any]] | None,
    settle_dependents: bool,
    returning: Sequence[str],
) -> Generator[Statement, list[tuple], list[Any]]:
    """transition(), as the statements it runs: each UPDATE is yielded and its rows sent back."""
    if not message_ids:
        return []
    now = timezone.now()
    updates = {"status": to_status, "updated_at": now, **(fields or {})}
    if stamp := STAMP_FIELD.get(to_status):
        updates.setdefault(stamp, now)
    # The status change, its events and what it decides for dependents commit together: one commit (one WAL
    # flush on PostgreSQL) instead of one per statement, and no status change without its timeline line.
    sources = sources_for(to_status, from_statuses)  # raises before any write if the transition is not allowed
    database = router.db_for_write(Message)
    # On PostgreSQL each UPDATE writes its rows' events itself, so a status change and its timeline line are one
    # statement, and a transition that decides nothing for dependents needs no transaction of its own: one round
    # trip instead of four (BEGIN, UPDATE, INSERT, COMMIT).
    inline_events = connections[database].vendor == "postgresql"
    deciding = settle_dependents and to_status in DECIDING_STATUSES
    result_fields = _loaded_fields(Message, returning) if returning else [Message._meta.pk]
    atomic = transaction.atomic(using=database, savepoint=False) if deciding or not inline_events else nullcontext()
    with atomic:
        moved: list[int] = []
        loaded: list[Message] = []
        events: list[MessageEvent] = []
        events_by_id = events_by_id or {}
        remaining = list(message_ids)
        for from_status in sources:
            if not remaining:
                break  # every message already moved from an earlier source: no statement for the others
            for start in range(0, len(remaining), UPDATE_CHUNK):
                chunk = remaining[start : start + UPDATE_CHUNK]
                values = {name: {pk: by_pk[pk] for pk in chunk} for name, by_pk in (per_row or {}).items()}
                if inline_events:
                    own = {pk: events_by_id[pk] for pk in chunk if pk in events_by_id}
                    inline = StatusEvents(kind, from_status, to_status, code, detail, data, own, now)
                    rows = yield from _update_by_shape(
                        database, chunk, from_status, extra_filter or {}, updates, values, inline, result_fields
                    )
                else:
                    queryset = Message.objects.filter(pk_among(chunk, status=from_status), **(extra_filter or {}))
                    rows = yield from _update_returning_steps(queryset, updates, values, result_fields)
                if returning:
                    changed = _instances(Message, database, result_fields, rows)
                    loaded.extend(changed)
                    moved_now = [message.pk for message in changed]
                else:
                    moved_now = [row[0] for row in rows]
                moved.extend(moved_now)
                if not inline_events:
                    for pk in moved_now:
                        event_detail, event_data = events_by_id.get(pk, (detail, data))
                        events.append((pk, kind, from_status, to_status, code, event_detail, event_data or {}))
            if moved:
                moved_set = set(moved)
                remaining = [pk for pk in remaining if pk not in moved_set]
        events_insert(events, created_at=now)
        if moved and deciding:
            # Release or cancel the messages waiting for these ones: one indexed query, usually finding none.
            from .services.dependencies import dependents_settle

            dependents_settle(parent_ids=moved)
    return loaded if returning else moved


class ShapedUpdate(NamedTuple):
    """A transition's UPDATE on PostgreSQL, as text, for every transition of the same shape (see _update_by_shape),
    with the parameters of its expression values (`F("attempts") + 1`), which are the same for equal expressions."""

    sql: str
    expression_params: dict[str, list[Any]]

    def params(self, connection, ids, from_status, extra_filter, updates, per_row) -> list[Any]:
        """The statement's parameters, in the order Django's compiler gives them."""
        meta = Message._meta
        params: list[Any] = []
        for name, value in updates.items():
            if hasattr(value, "resolve_expression"):
                params += self.expression_params[name]
            elif value is not None:  # None is written as NULL in the text
                params.append(meta.get_field(name).get_db_prep_save(value, connection))
        if per_row:
            params += _row_arrays(Message, connection, per_row)
        params += [array_param(ids, meta.pk.db_type(connection)), from_status]
        for lookup, value in sorted(extra_filter.items()):  # the order of Q's keyword arguments
            name, _, kind = lookup.partition("__")
            field = meta.get_field(name)
            if kind == "in":
                params += [field.get_db_prep_value(item, connection) for item in OrderedSet(value)]
            elif value is not None:
                params.append(field.get_db_prep_value(value, connection))
        return params


# By shape (database, fields written and which are NULL or which expression, filters, per-row fields, columns
# returned): the UPDATE's text, or None for a shape whose parameters this module cannot work out itself.
_shaped_updates: dict[tuple, ShapedUpdate | None] = {}
SHAPED_UPDATES_MAX = 500


def _update_shape(database, updates, extra_filter, per_row, result_fields) -> tuple | None:
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


def _update_by_shape(
    database: str, ids, from_status: str, extra_filter, updates, per_row, events: StatusEvents, result_fields
) -> Generator[Statement, list[tuple], list[tuple]]:
    """Run a transition's UPDATE (with its events: PostgreSQL) and return the rows it moved, as `result_fields`.

    Building the statement through the ORM (a queryset, its filter, the compiler) took about a quarter of a
    millisecond, as long as a worker's whole share of a send, for text that is the same every time the same
    transition runs; only the parameters change. So the first statement of each shape is built by the ORM as
    usual, and its parameters worked out here too: if they are the same, later statements of that shape take the
    text as it was and only work out their parameters. If not (a value this module does not know how to prepare),
    the shape always goes through the ORM."""
    connection = connections[database]
    shape = _update_shape(database, updates, extra_filter, per_row, result_fields)
    shaped = _shaped_updates.get(shape) if shape is not None else None
    if shaped is not None:
        params = shaped.params(connection, ids, from_status, extra_filter, updates, per_row)
        return (yield _update_statement(connection, Message, shaped.sql, params, events))
    queryset = Message.objects.filter(pk_among(ids, status=from_status), **extra_filter)
    sql, params = _update_sql(queryset, updates, per_row, result_fields)
    if not sql:
        return []
    if shape is not None and shape not in _shaped_updates and len(_shaped_updates) < SHAPED_UPDATES_MAX:
        candidate = ShapedUpdate(sql, _expression_params(connection, updates))
        same = candidate.params(connection, ids, from_status, extra_filter, updates, per_row) == params
        _shaped_updates[shape] = candidate if same else None
    return (yield _update_statement(connection, Message, sql, params, events))


def _expression_params(connection, updates) -> dict[str, list[Any]]:
    """The parameters of the expressions among `updates`, compiled as the update compiler compiles them."""
    query = UpdateQuery(Message)
    compiler = query.get_compiler(connection=connection)
    params = {}
    for name, value in updates.items():
        if hasattr(value, "resolve_expression"):
            resolved = value.resolve_expression(query, allow_joins=False, for_save=True)
            params[name] = list(compiler.compile(resolved)[1])
    return params


EVENT_COLUMNS = ("message", "kind", "from_status", "to_status", "code", "detail", "data", "dedupe_key", "created_at")


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

    def insert_from(self, moved: str, pk: str, connection) -> tuple[str, list[Any]]:
        """An INSERT of the events of the rows in `moved` (a CTE with their primary key column `pk`)."""
        quote = connection.ops.quote_name
        fields = [MessageEvent._meta.get_field(name) for name in EVENT_COLUMNS]
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


def events_insert(rows: Sequence[tuple[int, str, str, str, str, str, dict]], *, created_at) -> None:
    """Timeline events (message id, kind, from, to, code, detail, data), in one multi-row INSERT per 500.

    What bulk_create() would write, without a model instance and its save machinery per row: at thousands of
    messages a second, the events are most of the worker's database work.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(MessageEvent)]
    fields = [MessageEvent._meta.get_field(name) for name in EVENT_COLUMNS]
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


def record_event(message_id: int, *, kind: str, detail: str, code: str = "", data: dict | None = None) -> None:
    """Add a line to a message's timeline that is not a status change (a provider response, a note)."""
    MessageEvent.objects.create(message_id=message_id, kind=kind, detail=detail, code=code, data=data or {})
