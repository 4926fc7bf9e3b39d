"""The suppression list: who must not be messaged on which channel, and the signed one-click unsubscribe links.

One row per channel and address: the address in clear, or for an erased person a keyed hash of it
(suppression_hashes), which every lookup here matches as well. Opt-outs (STOP, an unsubscribe link, an ESP's
unsubscribe event) block marketing messages only; hard bounces, spam complaints and entries added by hand block every
message. The worker checks the list right after claiming a batch, so an opt-out that arrives after a message was
queued is still honoured.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from ..db.events import report_event_insert
from ..db.lookups import among
from ..models import ERASED, Category, Message, MessageEvent, Suppression
from .suppression_hashes import suppression_hash, suppression_hashes

Reason = Suppression.Reason

# A stronger reason replaces a weaker one on an existing entry (a bounce after an opt-out), never the other way.
REASON_STRENGTH: dict[str, int] = {Reason.OPT_OUT: 1, Reason.MANUAL: 2, Reason.COMPLAINT: 2, Reason.HARD_BOUNCE: 3}

UNSUBSCRIBE_SALT = "tidings.unsubscribe"


class InvalidUnsubscribeToken(ValueError):
    """The unsubscribe link was altered, forged, or signed with another SECRET_KEY."""


def suppression_address(channel: str, address: str) -> str:
    """The form an address is listed under: email addresses in lower case, since in practice nobody's mailbox
    depends on the case of its local part, and a bounce may report the address differently than we sent it."""
    return address.strip().lower() if channel == "email" else address.strip()


def _listed_as(channel: str, address: str) -> Q:
    """The entries of this address on this channel: in clear, or hashed (an erased person's)."""
    address = suppression_address(channel, address)
    if not address:
        raise ValueError("An empty address is on no suppression list.")  # it would match nothing, or by mistake all
    return Q(channel=channel) & (Q(address=address) | _hashed_among(suppression_hashes(address)))


def _hashed_among(hashes: Iterable[str]) -> Q:
    # The condition of the small partial index of hashed entries (suppression_channel_address_hash), spelled out:
    # PostgreSQL infers it from `= ANY` of a literal non-empty array, not from a bound array (server-side binding,
    # a generic plan), and without it that arm of the OR would fall back to scanning the channel's entries.
    return Q(address_hash__isnull=False) & among("address_hash", hashes)


def suppression_hashes_of(channel: str, address: str) -> tuple[str, ...]:
    """The hashes an erased person's entry for this address may be stored under (every key's)."""
    return suppression_hashes(suppression_address(channel, address))


def suppression_for(*, channel: str, address: str) -> Suppression | None:
    # A clear entry first: after an erasure, the person's newest opt-out is the one a person reading it can act on.
    entries = Suppression.objects.filter(_listed_as(channel, address))
    return entries.order_by(F("address_hash").asc(nulls_first=True)).first()


def suppression_blocks(suppression: Suppression, *, category: str) -> bool:
    """Whether this entry stops a message of this category. Transactional messages skip opt-outs only."""
    return not (suppression.reason == Reason.OPT_OUT and category == Category.TRANSACTIONAL)


def suppression_add(
    *,
    channel: str,
    address: str,
    reason: str,
    source: str,
    detail: str = "",
    message: Message | None = None,
    created_by: User | None = None,
    erased: bool = False,
) -> Suppression:
    """Put an address on the channel's suppression list. Idempotent: an existing entry is kept, and only a
    stronger reason (a hard bounce after an opt-out) replaces its reason, source and detail.

    `erased`: the address is an erased person's (a late bounce or unsubscribe about one of their blanked messages,
    a STOP from them): a new entry is written as a hash only, and no entry gets a detail or a message, since
    either may quote them."""
    if erased:
        detail, message = "", None
    values = {"reason": reason, "source": source[:100], "detail": detail, "message": message, "created_by": created_by}
    # An erased person's hashed entry is theirs still: a new opt-out or bounce strengthens it, and adds no address.
    suppression, created = suppression_for(channel=channel, address=address), False
    if suppression is None:
        address = suppression_address(channel, address)
        where = {"address_hash": suppression_hash(address)} if erased else {"address": address}
        try:
            with transaction.atomic():
                suppression, created = Suppression.objects.get_or_create(channel=channel, **where, defaults=values)
        except IntegrityError:  # another request added it between our read and our insert
            suppression, created = Suppression.objects.get(channel=channel, **where), False
    if not created and REASON_STRENGTH[reason] > REASON_STRENGTH[suppression.reason]:
        _strengthen(suppression, values)
    return suppression


def _strengthen(suppression: Suppression, values: dict[str, Any]) -> None:
    """Give an entry a stronger reason, by a conditional UPDATE of those columns only: an erasure may have hashed
    the entry since we read it, and a full save() would write its address back (and its hash away). A hashed entry
    gets no detail and no message: either may quote the person (a bounce's diagnostic, a message to them)."""
    now = timezone.now()
    entry = Suppression.objects.filter(pk=suppression.pk, reason=suppression.reason)
    updated = 0
    if suppression.address is not None:
        updated = entry.filter(address=suppression.address).update(**values, updated_at=now)
    if not updated:  # hashed, perhaps since we read it
        updated = entry.filter(address=None).update(**{**values, "detail": "", "message": None}, updated_at=now)
    if updated:
        suppression.refresh_from_db()


def suppression_lift(*, channel: str, address: str, reasons: Iterable[str] | None = (Reason.OPT_OUT,)) -> bool:
    """Take an address off the list. By default only an opt-out is lifted (a START reply, a resubscribe): a hard
    bounce or a complaint stays until a person removes it. `reasons=None` lifts any entry. Returns whether one was
    removed. An erased person's hashed entry is lifted the same way (a START reply from them)."""
    entries = Suppression.objects.filter(_listed_as(channel, address))
    if reasons is not None:
        entries = entries.filter(reason__in=list(reasons))
    deleted, _ = entries.delete()
    return bool(deleted)


def suppressions_blocking(messages: Iterable) -> dict[int, Suppression]:
    """The entries that stop each of these messages (anything with `pk`, `channel`, `recipient` and `category`:
    messages, or the worker's rows), by message id, in one query for the whole batch."""
    messages = list(messages)
    if not messages:
        return {}
    keys = {(m.channel, suppression_address(m.channel, m.recipient)) for m in messages}
    addresses = {address for _, address in keys if address}
    if not addresses:
        return {}
    # Each address's hashes (an HMAC per key, a few µs each) computed once, for the query and for the matching.
    hashes_of = {address: suppression_hashes(address) for address in addresses}
    hashes = {digest for digests in hashes_of.values() for digest in digests}
    # Two index lookups (address, address_hash) in one query; hashed entries are few, and either way one round trip.
    entries = Suppression.objects.filter(
        among("channel", {channel for channel, _ in keys}), among("address", addresses) | _hashed_among(hashes)
    )
    by_key: dict[tuple[str, str | None], Suppression] = {}
    for entry in entries:
        by_key[(entry.channel, entry.address)] = entry
        by_key[(entry.channel, entry.address_hash)] = entry
    blocking = {}
    for message in messages:
        address = suppression_address(message.channel, message.recipient)
        candidates = (by_key.get((message.channel, key)) for key in (address, *hashes_of.get(address, ())))
        # A clear entry and a hashed one may both stand (opted out again after an erasure): the strongest decides.
        found = [
            entry for entry in candidates if entry is not None and suppression_blocks(entry, category=message.category)
        ]
        if found:
            blocking[message.pk] = max(found, key=lambda entry: REASON_STRENGTH[entry.reason])
    return blocking


def suppression_entry_delete(*, suppression: Suppression) -> bool:
    """Remove this one entry (a person lifting it in the admin), hashed or not. Returns whether it was there."""
    deleted, _ = Suppression.objects.filter(pk=suppression.pk).delete()
    return bool(deleted)


def suppression_explain(suppression: Suppression) -> str:
    """Why a message to this address was not sent, in words a person can act on."""
    source = f" ({suppression.source})" if suppression.source else ""
    address = suppression.address or "this address (an erased person's, kept as a hash)"
    return (
        f"Not sent: {address} is on the {suppression.channel} suppression list: "
        f"{suppression.get_reason_display().lower()}{source} on {suppression.created_at:%Y-%m-%d %H:%M} UTC."
    )


# --- One-click unsubscribe (RFC 8058) ------------------------------------------------------------------------
# The token signs only our message id: no address in URLs or access logs, and it never expires, because a link
# in a months-old email must still work.


def unsubscribe_token_make(*, message_id: int) -> str:
    # No timestamp: links do not expire, and one message always carries the same link.
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object(message_id)


@functools.cache
def _unsubscribe_path(placeholder: str = "TOKEN") -> tuple[str, str]:
    # reverse() once: resolving it for every marketing email was a tenth of the email send path's CPU. Signed
    # tokens are URL-safe (letters, digits, "-", "_", ":"), so putting one in place of the placeholder gives
    # exactly what reverse() would.
    return reverse("unsubscribe", args=[placeholder]), placeholder


def unsubscribe_url_for(message_id: int) -> str:
    path, placeholder = _unsubscribe_path()
    path = path.replace(placeholder, unsubscribe_token_make(message_id=message_id))
    return f"{settings.PUBLIC_BASE_URL}{path}"


def unsubscribe_message_for(token: str) -> Message:
    """The message an unsubscribe link was sent in. Raises InvalidUnsubscribeToken for a forged or stale link."""
    try:
        message_id = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
    except signing.BadSignature:
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.") from None
    message = Message.objects.filter(pk=message_id).first() if isinstance(message_id, int) else None
    # An erased person's message no longer says whom it went to: there is nobody to put on the list.
    if message is None or message.recipient == ERASED:
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.")
    return message


# The unsubscribe's event on its message's timeline: one per message (message_event_dedupe), so a second click on
# the link, or a mail client's one-click post and the person's own, count one opt-out.
UNSUBSCRIBE_EVENT_KEY = "tidings:unsubscribe"


def unsubscribe_with_token(*, token: str, source: str) -> Suppression:
    """Opt the recipient of the message behind `token` out of marketing on its channel, and say so on the message's
    timeline (with `event` "unsubscribed", which analytics counts as an opt-out, like a provider's report)."""
    message = unsubscribe_message_for(token)
    with transaction.atomic():
        entry = suppression_add(
            channel=message.channel,
            address=message.recipient,
            reason=Reason.OPT_OUT,
            source=source,
            detail=f"Unsubscribed from message #{message.pk}.",
            message=message,
        )
        try:
            with transaction.atomic():
                report_event_insert(
                    message,
                    kind=MessageEvent.Kind.NOTE,
                    code="",
                    detail=f"Unsubscribed by the recipient ({source}).",
                    data={"event": "unsubscribed", "source": source},
                    dedupe_key=UNSUBSCRIBE_EVENT_KEY,
                )
        except IntegrityError:
            pass  # unsubscribed from this message before: counted once
    return entry
