"""The message state machine: which status may follow which, and the one way to change it.

Every transition is a conditional `UPDATE ... WHERE status = <allowed source> RETURNING id`, so two processes
racing on the same message cannot both win: the database decides, and each caller learns exactly which rows it
moved. Both PostgreSQL and SQLite (3.35+) support RETURNING. The SQL itself is `deliveries.db`'s
(`db.status_changes`); what happens to a message's dependents is decided by the hooks registered with
`after_deciding_transition` (deliveries.services.dependencies registers its own when the app is ready).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any

from django.db import connections, router
from django.utils import timezone

from .db.statements import Rows, Statement, run, run_together
from .db.status_changes import StatusChange
from .models import Message, MessageEvent, Status

TRANSITIONS: dict[str, frozenset[str]] = {
    # Paused: held by a paused campaign (workers only claim `queued` rows, so it is never sent).
    # Held: the cost guard stopped it (a spend cap, a velocity limit), from any status before the provider call.
    Status.SCHEDULED: frozenset(
        {Status.QUEUED, Status.CANCELLED, Status.FAILED, Status.SUPPRESSED, Status.PAUSED, Status.HELD}
    ),
    # Back to scheduled is a deferral: a rate limit or an open circuit breaker; no attempt is spent.
    Status.QUEUED: frozenset(
        {
            Status.SENDING,
            Status.SCHEDULED,
            Status.CANCELLED,
            Status.FAILED,
            Status.SUPPRESSED,
            Status.PAUSED,
            Status.HELD,
        }
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
            Status.HELD,
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
    # Released by a person or by a raised cap (queued now, or scheduled for the next window), cancelled by a person,
    # or failed when it expired while held (a one-time code is useless after its deadline).
    # Waiting: it depends on another message (the release puts it back to wait for its parent). Paused: its campaign
    # is paused (resuming sends it).
    Status.HELD: frozenset(
        {Status.QUEUED, Status.SCHEDULED, Status.WAITING, Status.PAUSED, Status.CANCELLED, Status.FAILED}
    ),
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
STAMP_FIELD: dict[str, str] = {
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


# A transition updates at most this many messages a statement.
UPDATE_CHUNK = 1000

# Called with the ids a transition moved into one of DECIDING_STATUSES, in the transition's transaction, after its
# UPDATEs and events: what the change decides for other messages is settled with it, or not at all.
_after_deciding: list[Callable[[list[int]], object]] = []


def after_deciding_transition(hook: Callable[[list[int]], object]) -> Callable[[list[int]], object]:
    """Register `hook(moved_ids)`, called after every transition that moves messages into a deciding status (unless
    the caller passed `settle_dependents=False`). Registering the same hook twice keeps one. Returns the hook, so
    it can decorate it."""
    if hook not in _after_deciding:
        _after_deciding.append(hook)
    return hook


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
    message its own value for some fields (see db.row_values). `settle_dependents=False` skips the hooks that
    settle the messages waiting for these ones, for a caller that knows there are none (the dispatcher's sweep
    would still settle one that appeared meanwhile). With `returning` (field names), the moved messages come back
    as instances with those fields as the update left them (the others deferred), instead of their ids.
    """
    return run(_transition_steps(**locals()))


def transitions_together(*calls: dict[str, Any]) -> list[list[Any]]:
    """Run several transitions (each a dict of transition()'s arguments), in order; returns each one's result.

    On PostgreSQL, transitions that are one statement each (their events written by it, nothing to decide for
    dependents) go to the server together, in one pipeline: one round trip, and one commit for all of them (a
    worker records the calls that came back and claims the next wave in one). Whatever else a transition needs
    (a second source status for rows the first did not move, a transaction) runs after, as transition() runs it.
    """
    connection = connections[router.db_for_write(Message)]
    calls = tuple({**(transition.__kwdefaults__ or {}), **call} for call in calls)
    steps = [_transition_steps(**call) for call in calls]
    if len(calls) < 2 or not all(_one_statement(call) for call in calls):
        return [run(step) for step in steps]
    return run_together(connection, steps)


def _one_statement(call: dict[str, Any]) -> bool:
    """Whether this transition's first statement can go in a pipeline: no transaction around it (it decides
    nothing for dependents), at most one chunk of ids."""
    deciding = call["settle_dependents"] and call["to_status"] in DECIDING_STATUSES
    return not deciding and len(call["message_ids"]) <= UPDATE_CHUNK


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
) -> Generator[Statement, Rows, list[Any]]:
    """transition(), as the statements it runs: each UPDATE is yielded and its rows sent back (db.statements)."""
    if not message_ids:
        return []
    now = timezone.now()
    updates = {"status": to_status, "updated_at": now, **(fields or {})}
    if stamp := STAMP_FIELD.get(to_status):
        updates.setdefault(stamp, now)
    sources = sources_for(to_status, from_statuses)  # raises before any write if the transition is not allowed
    change = StatusChange(
        to_status=to_status,
        updates=updates,
        extra_filter=extra_filter or {},
        per_row=per_row or {},
        returning=returning,
        kind=kind,
        code=code,
        detail=detail,
        data=data,
        events_by_id=events_by_id or {},
        now=now,
    )
    deciding = settle_dependents and to_status in DECIDING_STATUSES
    # The status change, its events and what it decides for dependents commit together: one commit (one WAL
    # flush on PostgreSQL) instead of one per statement, and no status change without its timeline line.
    with change.transaction(deciding=deciding):
        moved: list[Any] = []  # instances with `returning`, ids without
        moved_ids: list[int] = []
        remaining = list(message_ids)
        for from_status in sources:
            if not remaining:
                break  # every message already moved from an earlier source: no statement for the others
            for start in range(0, len(remaining), UPDATE_CHUNK):
                moved_now = yield from change.update_steps(remaining[start : start + UPDATE_CHUNK], from_status)
                moved.extend(moved_now)
                moved_ids.extend([message.pk for message in moved_now] if returning else moved_now)
            if moved_ids:
                moved_set = set(moved_ids)
                remaining = [pk for pk in remaining if pk not in moved_set]
        change.events_write()
        if moved_ids and deciding:
            for hook in _after_deciding:
                hook(moved_ids)
    return moved
