"""Held messages going out again: released by a person, or re-admitted when the cap that held them is raised.

A person's release of a message a spend cap held is final as far as the caps go: it is marked `guard_released`,
counted against its caps but never held by them again (one a velocity limit held is still checked by the caps). A
raised cap re-admits its held messages, oldest first, as far as the new amount allows; those go back to `queued`
unmarked, so the worker checks them again (and holds them again if the spend moved on meanwhile). Either way they
are queued and their send jobs pushed after the commit, as a retry is, or scheduled when their send time is still
ahead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from guard.services.pricing import message_cost_estimate
from guard.services.spend_caps import MICRO, Cap, SpendItem, after_cap_raised, money, spend_admit

from ..models import Message, Status
from ..state import transition
from .dispatch import batches, enqueue_messages_on_commit, new_job_id
from .spend_caps import COST_FIELDS, HELD_CAP, HELD_UNPRICED, cap_messages, caps_by_message

# A raised cap looks at this many of its oldest held messages at a time (one Redis round trip to decide them).
READMIT_CHUNK = 1000


def held_messages_release(*, message_ids: Sequence[int], by: str, code: str | None = None) -> list[int]:
    """Queue these held messages again, a person's decision: no cap holds them again. `code` narrows to the
    messages held with that code (`held:cap`). Returns the ids that moved (the others were no longer held)."""
    detail = f"Released by {by}." if by else "Released."
    return _queue_held(message_ids, detail=detail, released=True, code=code)


def held_messages_release_all(*, code: str | None, by: str) -> int:
    """Release every held message, or those held with `code` (`held:cap`, `held:velocity:…`), oldest first, a
    batch at a time. Returns how many moved."""
    if code is not None and not code.startswith("held:"):
        raise ValueError(f"{code!r} is not a hold's code: they start with 'held:' (held:cap, held:velocity:…)")
    held = Message.objects.filter(status=Status.HELD, **({"last_error_code": code} if code else {})).order_by("pk")
    released, after = 0, 0
    while ids := list(held.filter(pk__gt=after).values_list("pk", flat=True)[: settings.SEND_BATCH_SIZE]):
        released += len(held_messages_release(message_ids=ids, by=by, code=code))
        after = ids[-1]
    return released


@after_cap_raised
def held_messages_readmit(cap: Cap) -> int:
    """The messages this cap held, oldest first, that fit its new amount (and every other cap of theirs) go back to
    `queued`; the rest stay held. Returns how many went."""
    held = Message.objects.filter(cap_messages(cap), status=Status.HELD, last_error_code=HELD_CAP).order_by("pk")
    detail = f"Released: {cap.label} was raised to {money(cap.amount)} {cap.currency}."
    # What the earlier chunks re-admitted, by their caps: a dry run adds nothing, so each chunk's run is told.
    admitted: dict[tuple[Cap, ...], int] = {}
    readmitted, after = 0, 0
    while rows := list(held.filter(pk__gt=after).only("pk", "channel", *COST_FIELDS)[:READMIT_CHUNK]):
        caps = caps_by_message(rows)
        costed = [row for row in rows if row.pk in caps]
        before = [SpendItem(cost=cost, caps=caps_of, checked=False) for caps_of, cost in admitted.items()]
        items = [SpendItem(cost=int(row.estimated_cost * MICRO), caps=caps[row.pk]) for row in costed]  # type: ignore[operator]
        # A dry run: the worker counts them when it sends them, as any queued message.
        blocked = spend_admit(before + items, dry_run=True).blocked[len(before) :]
        fitting = [row.pk for row, stop in zip(costed, blocked, strict=True) if stop is None]
        for item, stop in zip(items, blocked, strict=True):
            if stop is None:
                admitted[item.caps] = admitted.get(item.caps, 0) + item.cost
        fitting += [row.pk for row in rows if row.pk not in caps]  # no cap of theirs left (a cap was removed)
        readmitted += len(_queue_held(fitting, detail=detail, released=False, code=HELD_CAP))
        if len(fitting) < len(rows):
            break  # the cap is full again: the later ones wait
        after = rows[-1].pk
    return readmitted


# Where a released message goes instead of `queued` when it may not go out yet.
SCHEDULED, WAITING, PAUSED, QUEUED = Status.SCHEDULED, Status.WAITING, Status.PAUSED, Status.QUEUED

# Registered by higher apps: given message ids, those that must wait rather than go (campaigns: those of a paused
# campaign, which a release or a raised cap must not send behind the pause).
_paused_by: list[Callable[[list[int]], set[int]]] = []


def register_release_pause(check: Callable[[list[int]], set[int]]) -> Callable[[list[int]], set[int]]:
    if check not in _paused_by:
        _paused_by.append(check)
    return check


def _estimates_now(message_ids: list[int]) -> dict[tuple[Decimal, str], list[int]]:
    """The messages held for want of a price that the price list prices now, by their new estimate."""
    found: dict[tuple[Decimal, str], list[int]] = defaultdict(list)
    rows = Message.objects.filter(pk__in=message_ids).values_list("pk", "channel", "recipient", "body")
    for pk, channel, recipient, body in rows:
        cost, currency = message_cost_estimate(channel=channel, recipient=recipient, body=body)
        if cost is not None:
            found[(cost, currency)].append(pk)
    return found


def _queue_held(message_ids: Sequence[int], *, detail: str, released: bool, code: str | None) -> list[int]:
    """held -> queued (send jobs pushed after the commit); or -> scheduled for one whose send time is still ahead
    (the dispatcher queues it then); -> waiting for one that depends on another message (the dependency sweep
    releases or cancels it as its parent decides); -> paused for one a higher app says must wait (a paused
    campaign's: resuming sends it). `released`: a person's release, which overrides the spend caps for a message a
    cap held (`guard_released`), never for one a velocity limit held: the caps still check that one."""
    now, moved = timezone.now(), []
    narrowed = {"last_error_code": code} if code else {}
    for ids in batches(list(message_ids), settings.SEND_BATCH_SIZE):
        rows = list(
            Message.objects.filter(pk__in=ids, status=Status.HELD, **narrowed).values_list(
                "pk", "last_error_code", "send_at", "depends_on_id"
            )
        )
        paused = set().union(*(check([row[0] for row in rows]) for check in _paused_by)) if rows else set()
        unpriced = [row[0] for row in rows if row[1] == HELD_UNPRICED]
        estimates = _estimates_now(unpriced) if released and unpriced else {}
        priced_now = {pk for ids in estimates.values() for pk in ids}
        groups: dict[tuple[str, bool], list[int]] = defaultdict(list)
        for pk, held_by, send_at, depends_on_id in rows:
            to: str
            if pk in paused:
                to = PAUSED
            elif depends_on_id is not None:
                to = WAITING
            elif send_at is not None and send_at > now:
                to = SCHEDULED
            else:
                to = QUEUED
            # A person's release overrides the caps for what a cap held, and for what had no price unless it has one
            # now: that one is estimated again and counted (and checked) like any other.
            overridden = held_by == HELD_CAP or (held_by == HELD_UNPRICED and pk not in priced_now)
            groups[(to, released and overridden)].append(pk)
        with transaction.atomic():
            for (cost, currency), priced in estimates.items():
                Message.objects.filter(pk__in=priced).update(estimated_cost=cost, cost_currency=currency)
            for (to_status, override), group in groups.items():
                fields: dict[str, Any] = {"claim_token": None, "last_error_code": "", "last_error_message": ""}
                if override:
                    fields["guard_released"] = True
                if to_status != QUEUED:
                    moved += transition(
                        group,
                        to_status=to_status,
                        from_statuses=[Status.HELD],
                        extra_filter=narrowed or None,
                        fields=fields,
                        detail=detail,
                    )
                    continue
                queued = transition(
                    group,
                    to_status=Status.QUEUED,
                    from_statuses=[Status.HELD],
                    extra_filter=narrowed or None,
                    fields={**fields, "job_id": new_job_id(), "send_at": None},
                    detail=detail,
                    returning=["priority", "job_id"],
                )
                enqueue_messages_on_commit(queued)
                moved += [message.pk for message in queued]
    return moved
