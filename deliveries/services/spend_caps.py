"""Spend caps at send time: the worker holds what would take a cap past its amount (docs/guard.md, "Spend caps").

The guard counts and decides (guard.services.spend_caps); this module knows messages: which caps a message counts
against (the SpendCap table, plus any source registered with `register_cap_source`, such as a campaign's own cap),
what a cap's window has cost according to the database (the recount after Redis lost its counter), and the move to
`held` with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Q, Sum

from content.models import Channel
from guard.services.countries import phone_country
from guard.services.pricing import destination_priced, price_list
from guard.services.spend_caps import (
    MICRO,
    TOTAL,
    Cap,
    SpendItem,
    Window,
    cap_window,
    register_spend_recount,
    spend_admit,
    spend_caps,
    spend_refund,
)

from ..models import Message, Status
from ..state import transition

HELD_CAP = "held:cap"
# A message a cap covers whose destination has no price: the cap cannot count it, so it does not pass unchecked.
HELD_UNPRICED = "held:unpriced"
DEFERRED_CAP = "deferred:cap"  # a cap that defers: not held, so no alert; the reason is on the timeline
# A message has cost money once it went to the provider: these statuses, stamped `sending_at` in the window.
SPENT_STATUSES = [Status.SENDING, Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.REVIEW]
# The columns the check reads, after the worker's own (deliveries.sending.job.QueuedRow).
COST_FIELDS = ("estimated_cost", "cost_currency", "api_key_id", "campaign_id", "spend_counted", "guard_released")


class CostedRow(Protocol):
    """A message, or the worker's row of one with COST_FIELDS read."""

    @property
    def pk(self) -> int: ...
    @property
    def channel(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def estimated_cost(self) -> Decimal | None: ...
    @property
    def cost_currency(self) -> str: ...
    @property
    def api_key_id(self) -> int | None: ...
    @property
    def campaign_id(self) -> int | None: ...
    @property
    def spend_counted(self) -> bool: ...
    @property
    def guard_released(self) -> bool: ...


class CapSource(Protocol):
    """More caps than the SpendCap table's (a campaign's own cap): registered by a higher app when it is ready."""

    def active(self) -> bool:
        """Whether any cap of this source exists (cheap: cached), so that a worker without caps asks nothing."""

    def caps_for(self, rows: Sequence[CostedRow]) -> Mapping[int, Sequence[Cap]]:
        """The source's caps each of these messages counts against, by message id (one query for all, at most)."""


_sources: list[CapSource] = []


def register_cap_source(source: CapSource) -> CapSource:
    """Add a source of caps (registering the same one twice keeps one). Its caps' `scope` must be one that
    SCOPE_COLUMNS maps to a column, for the recount."""
    if source not in _sources:
        _sources.append(source)
    return source


# How a cap's scope selects messages for the recount; a source adding a scope adds its column here.
SCOPE_COLUMNS: dict[str, str] = {"channel": "channel", "api_key": "api_key_id", "campaign": "campaign_id"}


def spend_caps_active() -> bool:
    """Any cap to check? False (no cap anywhere) costs the worker nothing more than this call."""
    return bool(spend_caps()) or any(source.active() for source in _sources)


def _covering_caps(rows: Sequence[CostedRow]) -> dict[int, list[Cap]]:
    """Every cap whose scope covers each message, whatever its currency or the message's estimate."""
    table = spend_caps()
    extra = [source.caps_for(rows) for source in _sources if source.active()]
    found: dict[int, list[Cap]] = {}
    for row in rows:
        caps = [cap for cap in table if cap.covers(channel=row.channel, api_key_id=row.api_key_id)]
        caps += [cap for more in extra for cap in more.get(row.pk, ())]
        if caps:
            found[row.pk] = caps
    return found


def caps_by_message(rows: Sequence[CostedRow]) -> dict[int, tuple[Cap, ...]]:
    """Every cap each message counts against: its cost in a cap's currency only, and only when it has one."""
    costed = {row.pk: row for row in rows if row.estimated_cost is not None}  # no estimate: unpriced_under_caps
    found: dict[int, tuple[Cap, ...]] = {}
    for pk, caps in _covering_caps(list(costed.values())).items():
        in_currency = tuple(cap for cap in caps if cap.currency == costed[pk].cost_currency)
        if in_currency:
            found[pk] = in_currency
    return found


def unpriced_under_caps(rows: Sequence[CostedRow]) -> dict[int, Cap]:
    """The messages to a destination the price list leaves without a price (an SMS or WhatsApp message to a
    country with no row and no catch-all) that a cap covers, with the first such cap: a cap cannot count what has
    no estimate, and what it cannot count must not pass it unchecked (it is where pumping sends). A channel with no
    price at all is not held: an operator who prices nothing of it does not cap it (the caps' admin says so)."""
    by_country = price_list().by_country
    unpriced = [
        row
        for row in rows
        if row.estimated_cost is None
        and row.channel in by_country
        # Priced since it was made (a price list imported after it): not what this guards against; it goes on,
        # uncounted, like any message made without an estimate.
        and not destination_priced(channel=row.channel, recipient=row.recipient)
    ]
    return {pk: caps[0] for pk, caps in _covering_caps(unpriced).items()}


def messages_hold_over_caps(rows: Sequence[CostedRow]) -> dict[int, str]:
    """Stop the rows whose estimate would take a cap past its amount, in order, counting the others' spend: one
    Redis round trip for all. Each stopped row goes queued -> held (or -> scheduled at the next window's start, for a
    cap that defers). Returns the new status of each row stopped, by id.

    A message the worker retries after an attempt was counted at its first (its claim set `spend_counted`); one a
    person retries or resends is a new send, counted again; one a person released is counted, not checked."""
    unchecked = [row for row in rows if not row.spend_counted and not row.guard_released]
    stopped = _hold_unpriced(unchecked)
    caps = caps_by_message(rows)
    chosen = [row for row in rows if row.pk in caps and not row.spend_counted]
    if not chosen:
        return stopped
    items = [
        SpendItem(cost=int(row.estimated_cost * MICRO), caps=caps[row.pk], checked=not row.guard_released)  # type: ignore[operator]
        for row in chosen
    ]
    admission = spend_admit(items)
    by_cap: dict[str, list[int]] = {}
    blocking: dict[str, Cap] = {}
    for row, cap in zip(chosen, admission.blocked, strict=True):
        if cap is not None:
            by_cap.setdefault(cap.key, []).append(row.pk)
            blocking[cap.key] = cap
    for key, ids in by_cap.items():
        cap, spent = blocking[key], admission.spent[key]
        data = {"cap": cap.key, "amount": str(cap.amount), "spent": str(spent)}
        if cap.defer and cap.period != TOTAL:
            moved, status = _defer(ids, cap, spent, data), Status.SCHEDULED
        else:
            moved, status = _hold(ids, code=HELD_CAP, reason=cap.describe(spent), data=data), Status.HELD
        stopped.update(dict.fromkeys(moved, status))
    return stopped


def _hold(ids: list[int], *, code: str, reason: str, data: dict[str, str]) -> list[int]:
    """queued -> held with the code and the reason (on the message and its timeline)."""
    fields = {"last_error_code": code, "last_error_message": reason, "claim_token": None}
    return transition(
        ids, to_status=Status.HELD, from_statuses=[Status.QUEUED], fields=fields, code=code, detail=reason, data=data
    )


def _hold_unpriced(rows: Sequence[CostedRow]) -> dict[int, str]:
    """queued -> held for the rows a cap covers that have no price, with the destination and what to do."""
    unpriced = unpriced_under_caps(rows)
    groups: dict[tuple[str, str, Cap], list[int]] = {}
    for row in rows:
        if row.pk in unpriced:
            country = phone_country(row.recipient.removeprefix("whatsapp:"))
            groups.setdefault((row.channel, country, unpriced[row.pk]), []).append(row.pk)
    stopped: dict[int, str] = {}
    for (channel, country, cap), ids in groups.items():
        label, catch_all = Channel(channel).label, "the channel's catch-all (a blank country)"
        if country:
            where, fix = f"{label} to {country}", f"a price for {country}, or {catch_all},"
        else:  # a number phonenumbers cannot place: only a catch-all prices it
            where, fix = f"{label} to a number of no known country", catch_all
        reason = (
            f"Held: {where} has no price, so {cap.label} cannot count it. Add {fix} under Cost guard → Prices, "
            "then release it."
        )
        moved = _hold(ids, code=HELD_UNPRICED, reason=reason, data={"cap": cap.key, "country": country})
        stopped.update(dict.fromkeys(moved, Status.HELD))
    return stopped


def _defer(ids: list[int], cap: Cap, spent: Decimal, data: dict[str, str]) -> list[int]:
    """queued -> scheduled at the start of the cap's next window (the dispatcher queues them then), with the reason."""
    window = cap_window(cap.period)
    reason = f"{cap.describe(spent, verb='Deferred')} Sending from {window.end:%Y-%m-%d %H:%M %Z}, its next window."
    fields = {"send_at": window.end, "last_error_code": DEFERRED_CAP, "last_error_message": reason, "claim_token": None}
    return transition(
        ids,
        to_status=Status.SCHEDULED,
        from_statuses=[Status.QUEUED],
        fields=fields,
        code=DEFERRED_CAP,
        detail=reason,
        data=data,
    )


def spend_refund_deferred(message_ids: Iterable[int]) -> None:
    """Messages admitted by the check and then deferred (the provider's rate, a paused provider) were not sent:
    take their cost back, since they are checked and counted again when they come back."""
    if not spend_caps_active():
        return
    unclaimed = Message.objects.filter(pk__in=list(message_ids), spend_counted=False)
    rows = list(unclaimed.only("pk", "channel", *COST_FIELDS))
    caps = caps_by_message(rows)
    spend_refund([SpendItem(cost=int(row.estimated_cost * MICRO), caps=caps[row.pk]) for row in rows if row.pk in caps])  # type: ignore[operator]


def cap_messages(cap: Cap) -> Q:
    """The messages a cap covers, as a filter."""
    column = SCOPE_COLUMNS.get(cap.scope)
    return Q(**{column: cap.scope_value}) if column else Q()


def spend_recount(cap: Cap, window: Window) -> Decimal:
    """What the cap's window has cost, from the database: the estimates of messages that went to the provider in it.

    Range-scans the created_at index over the window plus SPEND_RECOUNT_LOOKBACK_DAYS (a message created earlier
    and sent in the window, a scheduled one, counts if it was created within those days), then filters on
    sending_at: docs/guard.md gives its time."""
    messages = Message.objects.filter(
        cap_messages(cap),
        status__in=SPENT_STATUSES,
        cost_currency=cap.currency,
        sending_at__gte=window.start,
        sending_at__lt=window.end,
    )
    if cap.scope != "campaign":  # a campaign's messages are found by their own index
        messages = messages.filter(
            created_at__gte=window.start - timedelta(days=settings.SPEND_RECOUNT_LOOKBACK_DAYS),
            created_at__lt=window.end,
        )
    total: Any = messages.aggregate(total=Sum("estimated_cost"))["total"]
    return total or Decimal(0)


register_spend_recount(spend_recount)
