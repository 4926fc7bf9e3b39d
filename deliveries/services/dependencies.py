"""Messages that wait for another one: send only once the parent was sent, delivered, or not opened/clicked.

A dependent message is stored `waiting` with `depends_on` (its parent), `depends_on_condition`, an optional
`depends_on_delay` and, for the not-opened / not-clicked conditions, a `depends_on_window` (24 hours unless given).
Nothing of it is in Redis until it is released: the database is the truth.

- **Released** (`waiting -> scheduled`, `send_at` = now + delay) once the parent meets the condition; the dispatcher
  queues it when due, like any scheduled message.
- **Cancelled** with a reason naming the parent when the parent can no longer meet it: the parent ended `failed`,
  `undelivered`, `cancelled` or `suppressed`, or (not opened / not clicked) the parent was opened or clicked within
  its window. A cancellation cascades to the cancelled message's own dependents, through `transition()`.
- **Not opened / not clicked**: when the parent is sent, the child's `send_at` (still `waiting`) is set to the end of
  the window, parent's `sent_at` + window; the sweep decides then.

This module registers `dependents_settle(parent_ids=...)` with `deliveries.state.after_deciding_transition`, so
every transition that moves messages into a deciding status settles their dependents in its own transaction (one
indexed query, finding nothing for most messages); DeliveriesConfig.ready imports it, so the hook is always there.
The dispatcher runs `dependencies_sweep()` on its reconcile tick to catch what a crash between the two left behind
and to decide the windows that ended. Both are conditional updates, safe to run in several processes at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ..db.lookups import among
from ..input_limits import HORIZON, MAX_ID
from ..models import DependencyCondition, Message, Status
from ..state import after_deciding_transition, transition

DEFAULT_WINDOW = timedelta(hours=24)
# A parent in one of these can no longer meet any condition: its dependents are cancelled.
PARENT_FAILED_STATUSES = frozenset({Status.FAILED, Status.UNDELIVERED, Status.CANCELLED, Status.SUPPRESSED})
PARENT_SENT_STATUSES = frozenset({Status.SENT, Status.DELIVERED})
ENGAGEMENT_CONDITIONS = frozenset({DependencyCondition.NOT_OPENED, DependencyCondition.NOT_CLICKED})
# Opens and clicks are reported for email only (anymail's tracking events).
ENGAGEMENT_CHANNELS = frozenset({"email"})
DEPENDENCY_CODE = "dependency"

_ROW_FIELDS = (
    "pk",
    "depends_on_id",
    "depends_on_condition",
    "depends_on_delay",
    "depends_on_window",
    "send_at",
    "depends_on__status",
    "depends_on__sent_at",
    "depends_on__last_error_code",
    "depends_on__last_error_message",
    "depends_on__first_opened_at",
    "depends_on__first_clicked_at",
)


def dependency_validate(
    *,
    channel: str,
    depends_on: int | str | Message | None,
    condition: str = "",
    delay: int | float | timedelta | None = None,
    window: int | float | timedelta | None = None,
    send_at: datetime | None = None,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Check a requested dependency. Returns (the Message fields to store, errors by field name).

    `depends_on` is a message (or its id) that exists; `condition` defaults to delivered; not_opened and
    not_clicked need an email parent; `delay` and `window` are seconds (or timedeltas). A dependent message has no
    `send_at` of its own: its delay says when it goes.
    """
    if depends_on is None or depends_on == "":
        if condition or delay or window:
            return {}, {"depends_on": ["depends_on_condition, _delay and _window need a depends_on message."]}
        return {}, {}
    errors: dict[str, list[str]] = {}
    if not isinstance(depends_on, Message) and not (isinstance(depends_on, int) and 1 <= depends_on <= MAX_ID):
        return {}, {"depends_on": [f"A message id is a whole number from 1 to {MAX_ID}."]}
    parent = depends_on if isinstance(depends_on, Message) else Message.objects.filter(pk=depends_on).first()
    if parent is None:
        return {}, {"depends_on": [f"No message with id {depends_on}."]}
    condition = condition or DependencyCondition.DELIVERED
    if condition not in DependencyCondition.values:
        errors["depends_on_condition"] = [
            f"'{condition}' is not a condition; use one of {', '.join(DependencyCondition.values)}."
        ]
    elif condition in ENGAGEMENT_CONDITIONS and parent.channel not in ENGAGEMENT_CHANNELS:
        errors["depends_on_condition"] = [
            f"Opens and clicks are only reported for email; message {parent.pk} is {parent.channel}."
        ]
    delay_td = _duration(delay)
    if delay_td is not None and not timedelta(0) <= delay_td <= HORIZON:
        errors["depends_on_delay"] = [f"depends_on_delay is a number of seconds from 0 to {_seconds(HORIZON)}."]
    window_td = _duration(window)
    if window_td is not None and window_td > HORIZON:
        errors["depends_on_window"] = [f"depends_on_window is at most {_seconds(HORIZON)} seconds."]
    elif window_td is not None and condition not in ENGAGEMENT_CONDITIONS:
        errors["depends_on_window"] = ["A window applies to the not_opened and not_clicked conditions only."]
    elif window_td is not None and window_td <= timedelta(0):
        errors["depends_on_window"] = ["depends_on_window is a number of seconds above 0."]
    if send_at is not None:
        errors["send_at"] = ["A message that depends on another goes when released; use depends_on_delay instead."]
    if errors:
        return {}, errors
    if condition in ENGAGEMENT_CONDITIONS and window_td is None:
        window_td = DEFAULT_WINDOW
    return {
        "depends_on": parent,
        "depends_on_condition": condition,
        "depends_on_delay": delay_td,
        "depends_on_window": window_td,
    }, {}


def dependency_describe(message: Message) -> str:
    """A sentence saying what the message waits for, for its timeline and the admin."""
    condition = message.depends_on_condition
    parent = f"message #{message.depends_on_id}"
    if condition in ENGAGEMENT_CONDITIONS:
        verb = "opened" if condition == DependencyCondition.NOT_OPENED else "clicked"
        text = f"{parent} not {verb} within {_human(message.depends_on_window or DEFAULT_WINDOW)} of its send"
    else:
        text = f"{parent} {condition}"
    if message.depends_on_delay:
        text += f", then {_human(message.depends_on_delay)}"
    return text


def dependents_settle(*, parent_ids: Sequence[int] | None = None, limit: int = 5000) -> dict[str, int]:
    """Release or cancel the waiting messages whose parent has decided their fate (of these parents, or all).

    Returns how many were released and cancelled. One query when there is nothing to do.
    """
    now = timezone.now()
    counts = {"released": 0, "cancelled": 0}
    if parent_ids is not None:
        # Found through the parents' index, not by scanning every waiting message (see EqualsUnplanned).
        waiting = Message.objects.filter(among("depends_on_id", parent_ids, status=Status.WAITING))
        # The worker asks after every group of sends, and almost always nobody waits: say so with the cheapest
        # query there is, before building the one that joins the parents.
        if not waiting.exists():
            return counts
    else:
        waiting = Message.objects.filter(status=Status.WAITING)
    parent_sent = Q(depends_on__status__in=PARENT_SENT_STATUSES)
    decided = waiting.filter(
        Q(depends_on__status__in=PARENT_FAILED_STATUSES)
        | (Q(depends_on_condition=DependencyCondition.SENT) & parent_sent)
        | Q(depends_on_condition=DependencyCondition.DELIVERED, depends_on__status=Status.DELIVERED)
        | (
            Q(depends_on_condition__in=ENGAGEMENT_CONDITIONS)
            & parent_sent
            & (Q(send_at__isnull=True) | Q(send_at__lte=now))
        )
    )
    for row in decided.order_by("pk").values(*_ROW_FIELDS)[:limit]:
        outcome = _settle(row, now)
        if outcome:
            counts[outcome] += 1
    return counts


@after_deciding_transition
def _parents_decided(message_ids: list[int]) -> None:
    """Release or cancel the messages waiting for these ones, which a transition just moved into a deciding
    status: one indexed query, usually finding none."""
    dependents_settle(parent_ids=message_ids)


def dependencies_sweep(*, limit: int = 5000) -> dict[str, int]:
    """The dispatcher's pass over every waiting message: catches a release a crash missed and ends the windows."""
    return dependents_settle(parent_ids=None, limit=limit)


def _settle(row: dict[str, Any], now: datetime) -> str:
    pk, parent_id, parent_status = row["pk"], row["depends_on_id"], row["depends_on__status"]
    if parent_status in PARENT_FAILED_STATUSES:
        error = row["depends_on__last_error_code"]
        why = f" ({error}: {row['depends_on__last_error_message']})" if error else ""
        return _cancel(pk, f"Not sent: message #{parent_id} it depends on ended {parent_status}{why}.", parent_id)
    condition = row["depends_on_condition"]
    if condition in ENGAGEMENT_CONDITIONS:
        decide_at = (row["depends_on__sent_at"] or now) + (row["depends_on_window"] or DEFAULT_WINDOW)
        if row["send_at"] is None:
            # The parent was just sent: wait for the end of its window, still `waiting`.
            Message.objects.filter(pk=pk, status=Status.WAITING, send_at=None).update(send_at=decide_at, updated_at=now)
        if decide_at > now:
            return ""
        verb = "opened" if condition == DependencyCondition.NOT_OPENED else "clicked"
        engaged_at = row[f"depends_on__first_{verb}_at"]
        if engaged_at is not None and engaged_at <= decide_at:
            return _cancel(pk, f"Not sent: message #{parent_id} it depends on was {verb}.", parent_id)
        detail = f"Released: message #{parent_id} was not {verb} within its window."
    else:
        detail = f"Released: message #{parent_id} it depends on was {parent_status}."
    send_at = now + (row["depends_on_delay"] or timedelta(0))
    if send_at > now:
        detail += f" Sending at {send_at:%Y-%m-%d %H:%M:%S %Z}."
    moved = transition(
        [pk],
        to_status=Status.SCHEDULED,
        from_statuses=[Status.WAITING],
        fields={"send_at": send_at},
        detail=detail,
        data={"depends_on": parent_id},
    )
    return "released" if moved else ""


def _cancel(pk: int, reason: str, parent_id: int) -> str:
    # transition() settles this message's own dependents in turn (the hook above): a cancelled chain is cancelled
    # to its end.
    moved = transition(
        [pk],
        to_status=Status.CANCELLED,
        from_statuses=[Status.WAITING],
        fields={"last_error_code": DEPENDENCY_CODE, "last_error_message": reason},
        code=DEPENDENCY_CODE,
        detail=reason,
        data={"depends_on": parent_id},
    )
    return "cancelled" if moved else ""


def _duration(value: int | float | timedelta | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    # Beyond what timedelta holds (or NaN): any value past the horizon is refused the same way.
    if not -_seconds(HORIZON) * 2 <= value <= _seconds(HORIZON) * 2:
        return HORIZON * (2 if value > 0 else -2)
    return timedelta(seconds=value)


def _seconds(duration: timedelta) -> int:
    return int(duration.total_seconds())


def _human(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
