"""Erasing what deliveries holds of one person (a GDPR erasure request), given their addresses.

The person's messages keep their place in the figures (channel, status, times, provider ids, error codes) and lose
everything that says who they were to or what they said: recipient, subject, bodies, context, metadata, media,
provider payloads. Their replies to us lose sender, text and payload; their suppression entries keep only a keyed
hash of the address (suppression_hashes), so an opt-out still holds; audit entries, API batch answers, admin
history and pending provider receipts that quote them have the quotes replaced. What is not sent yet is cancelled
first. campaigns.services.person_erasure calls this with the addresses of a person and of their contacts.

Each part counts its rows before it writes, and `dry_run` stops there: the counts are what an erasure would change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from ..archiving.lock import archive_lock
from ..db.events import event_texts_replace
from ..models import (
    ERASED,
    ArchivedMessageTally,
    ArchiveErasure,
    ArchiveFile,
    AuditEntry,
    Batch,
    IdempotencyKey,
    InboundMessage,
    Message,
    MessageEvent,
    ProviderReceipt,
    Status,
    Suppression,
)
from ..state import transition
from .erasure_text import PersonQuotes
from .suppression import REASON_STRENGTH, suppression_address
from .suppression_hashes import suppression_hash, suppression_hashes

CHUNK = 1000
# Not sent yet: cancelled before the recipient goes (a message to "[erased]" could only fail).
CANCELLABLE = [Status.SCHEDULED, Status.QUEUED, Status.WAITING, Status.PAUSED, Status.HELD]
# What a blanked timeline event keeps of its data: the words analytics counts by (analytics.services.rollup) and
# our own bookkeeping, never a provider's payload (addresses, IP addresses, user agents, link URLs).
EVENT_DATA_KEPT = frozenset(
    {"event", "event_type", "status", "first", "error_code", "reason", "suppression_id", "attempt", "max_attempts"}
    | {"transient", "next", "retry_at", "depends_on", "provider_message_id"}
)
BLANKED_MESSAGE_FIELDS: dict[str, Any] = {
    "recipient": ERASED,
    "subject": "",
    "body": "",
    "html_body": "",
    "context": {},
    "metadata": {},
    "media_urls": [],
    "content_variables": {},
    # The client's own key: it may be made of the address, a name or the client's id for the person, and nobody
    # can tell which. NULL, not blanked to one value: keys are unique.
    "dedupe_key": None,
}


@dataclass(frozen=True)
class PersonAddress:
    """One address of the person on one channel, written as messages store it (deliveries.addresses)."""

    channel: str
    address: str


@dataclass
class ErasureCounts:
    """What an erasure changed (or, in a dry run, would change), row by row."""

    messages: int = 0
    messages_cancelled: int = 0
    events: int = 0
    inbound_messages: int = 0
    suppressions_hashed: int = 0
    receipts: int = 0
    audit_entries: int = 0
    batches: int = 0
    idempotency_keys: int = 0
    admin_history: int = 0
    archive_tallies: int = 0
    # Archive files the dispatchers search for them and rewrite without them (archive_erasure).
    archive_files: int = 0
    # Filled by campaigns.services.person_erasure.
    contacts: int = 0
    list_memberships: int = 0
    segments: int = 0
    # Left for now: being sent at this very moment (status `sending`); the provider's answer is on its way.
    messages_in_flight: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def recipient_data_erase(
    *,
    addresses: Sequence[PersonAddress],
    also_quoted: Iterable[str] = (),
    also_targets: Iterable[tuple[str, Sequence[Any]]] = (),
    counts: ErasureCounts | None = None,
    dry_run: bool = False,
) -> ErasureCounts:
    """Erase what deliveries holds of the person with these addresses. `also_quoted` are more strings that name
    them (a contact's name), blanked in their own rows and in the audit entries and admin history about them;
    `also_targets` ((app_label.model, ids)) are more objects of theirs whose audit entries and admin history
    quote them (their contacts). Returns the counts, added to `counts` if given."""
    counts = counts if counts is not None else ErasureCounts()
    addresses = [PersonAddress(a.channel, a.address.strip()) for a in addresses if a.address.strip()]
    if not addresses:
        return counts
    quotes = _quotes_of(addresses)
    own_quotes = PersonQuotes([*quotes.quotes, *also_quoted])
    with transaction.atomic():
        if not dry_run:
            # First, as archiving takes it before the message rows (the other order could deadlock with a chunk):
            # an archive chunk, restore or file rewrite then never sees this erasure half recorded.
            archive_lock(wait=True)
        message_ids = _message_ids(addresses)
        counts.messages_in_flight += _message_ids_in_flight(addresses)
        inbound_ids = _inbound_ids(addresses)
        targets = [
            ("deliveries.message", [str(pk) for pk in message_ids]),
            ("deliveries.inboundmessage", [str(pk) for pk in inbound_ids]),
            *((label, [str(pk) for pk in ids]) for label, ids in also_targets),
        ]
        counts.messages_cancelled += _cancel(message_ids, dry_run)
        # A worker may have claimed one since we listed it (queued, now `sending`): it is sending to the address it
        # holds, and the provider's answer will land on the timeline. Left for the next run, like those above.
        blanked = message_ids if dry_run else _blank_messages(message_ids, own_quotes)
        counts.messages_in_flight += len(message_ids) - len(blanked)
        counts.messages += len(blanked)
        counts.events += _blank_events(blanked, own_quotes, dry_run)
        counts.inbound_messages += _blank_inbound(inbound_ids, dry_run)
        counts.suppressions_hashed += _hash_suppressions(addresses, dry_run)
        counts.receipts += _scrub(ProviderReceipt, quotes.mentioned_in(json_fields=["report"]), quotes, dry_run)
        counts.audit_entries += _scrub(
            AuditEntry, _audit_about(quotes, targets), own_quotes, dry_run, repr_field="target_repr"
        )
        counts.batches += _scrub(Batch, quotes.mentioned_in(json_fields=["response"]), quotes, dry_run)
        counts.idempotency_keys += _scrub(IdempotencyKey, quotes.mentioned_in("key"), quotes, dry_run)
        counts.admin_history += _scrub(
            LogEntry, _admin_history_about(quotes, targets), own_quotes, dry_run, repr_field="object_repr"
        )
        # The campaign page's example of an archived failure may be a provider's error text quoting them.
        counts.archive_tallies += _scrub(ArchivedMessageTally, quotes.mentioned_in("error_example"), quotes, dry_run)
        counts.archive_files += ArchiveFile.objects.count()
        if not dry_run:
            _archive_erasures_record(addresses)
    return counts


def _archive_erasures_record(addresses: Sequence[PersonAddress]) -> None:
    """What the dispatchers look for in the archive files, and a restore in what it brings back: each address as
    its keyed hash, never in clear (deliveries.services.archive_erasure)."""
    now = timezone.now()
    ArchiveErasure.objects.bulk_create(
        ArchiveErasure(
            channel=a.channel,
            address_hash=suppression_hash(suppression_address(a.channel, a.address)),
            requested_at=now,
        )
        for a in addresses
    )


def messages_blank_whole(message_ids: Sequence[int]) -> None:
    """Blank these (finished) messages and their timelines without knowing whose they were: every text emptied
    whole, where an erasure that knows the person's addresses replaces only the quotes. For messages an erasure
    found by their recipient's hash (archive_erasure)."""
    for chunk in _chunks(message_ids):
        Message.objects.filter(pk__in=chunk).update(
            **BLANKED_MESSAGE_FIELDS, last_error_message="", updated_at=timezone.now()
        )
        changes = {
            pk: ("", event_data_kept(data))
            for pk, data in MessageEvent.objects.filter(message_id__in=chunk).values_list("pk", "data")
        }
        if changes:
            event_texts_replace(changes)


def _quotes_of(addresses: Sequence[PersonAddress]) -> PersonQuotes:
    # A phone number also as payloads write it without "+" (some providers' fields do).
    quotes = {a.address for a in addresses}
    quotes |= {a.address.removeprefix("+") for a in addresses if a.channel != "email" and a.address.startswith("+")}
    return PersonQuotes(quotes)


def _by_address(field_name: str, addresses: Sequence[PersonAddress]) -> Q:
    condition = Q(pk__in=[])
    for a in addresses:
        # An email address as it was given may differ in case from how it was stored: both ways are the person.
        lookup = f"{field_name}__iexact" if a.channel == "email" else field_name
        condition |= Q(channel=a.channel, **{lookup: a.address})
    return condition


def _message_ids(addresses: Sequence[PersonAddress]) -> list[int]:
    query = Message.objects.filter(_by_address("recipient", addresses)).exclude(status=Status.SENDING)
    return list(query.order_by("pk").values_list("pk", flat=True))


def _message_ids_in_flight(addresses: Sequence[PersonAddress]) -> int:
    """Messages a worker is sending right now: erased by the next run, once the worker wrote what it got back
    (blanking them now would leave that answer, with their address, on the timeline)."""
    return Message.objects.filter(_by_address("recipient", addresses), status=Status.SENDING).count()


def _inbound_ids(addresses: Sequence[PersonAddress]) -> list[int]:
    query = InboundMessage.objects.filter(_by_address("sender", addresses)).exclude(sender=ERASED)
    return list(query.order_by("pk").values_list("pk", flat=True))


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _cancel(message_ids: Sequence[int], dry_run: bool) -> int:
    if dry_run:
        return Message.objects.filter(pk__in=message_ids, status__in=CANCELLABLE).count()
    cancelled = 0
    for chunk in _chunks(message_ids):
        cancelled += len(
            transition(
                chunk,
                to_status=Status.CANCELLED,
                from_statuses=CANCELLABLE,
                detail="Cancelled: the recipient's data was erased.",
                code="erased",
            )
        )
    return cancelled


def _blank_messages(message_ids: Sequence[int], quotes: PersonQuotes) -> list[int]:
    """Blank these messages, except any a worker claimed since they were listed. Returns the ids blanked."""
    blanked: list[int] = []
    for chunk in _chunks(message_ids):
        # Locked, so that no worker claims them between this read and the UPDATE (a claim waits, then finds them
        # cancelled or finished); a message already `sending` is never blanked under the worker's feet.
        ids = list(
            Message.objects.filter(pk__in=chunk)
            .exclude(status=Status.SENDING)
            .select_for_update()
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Message.objects.filter(pk__in=ids).update(**BLANKED_MESSAGE_FIELDS, updated_at=timezone.now())
        blanked += ids
        # A provider's error text may quote the number it refused ("The 'To' number +1... is not valid").
        errors = Message.objects.filter(pk__in=ids).exclude(last_error_message="")
        changed = []
        for message in errors.only("pk", "last_error_message"):
            text = quotes.text(message.last_error_message)
            if text != message.last_error_message:
                message.last_error_message = text
                changed.append(message)
        Message.objects.bulk_update(changed, ["last_error_message"], batch_size=500)
    return blanked


def event_data_kept(data: Any, quotes: PersonQuotes | None = None) -> dict[str, Any]:
    """What an erased message's event keeps of its data (EVENT_DATA_KEPT), with the person's quotes replaced."""
    if not isinstance(data, dict):
        return {}
    kept = {key: value for key, value in data.items() if key in EVENT_DATA_KEPT and not isinstance(value, dict | list)}
    return quotes.json(kept) if quotes is not None else kept


def _blank_events(message_ids: Sequence[int], quotes: PersonQuotes, dry_run: bool) -> int:
    changed = 0
    for chunk in _chunks(message_ids):
        changes = {}
        for pk, detail, data in MessageEvent.objects.filter(message_id__in=chunk).values_list("pk", "detail", "data"):
            new = (quotes.text(detail), event_data_kept(data, quotes))
            if new != (detail, data):
                changes[pk] = new
        changed += len(changes)
        if changes and not dry_run:
            event_texts_replace(changes)
    return changed


def _blank_inbound(inbound_ids: Sequence[int], dry_run: bool) -> int:
    # Channel, keyword, provider and time stay: the inbound figures (analytics) count by them.
    if not dry_run:
        for chunk in _chunks(inbound_ids):
            InboundMessage.objects.filter(pk__in=chunk).update(sender=ERASED, body="", media_urls=[], data={})
    return len(inbound_ids)


def _hash_suppressions(addresses: Sequence[PersonAddress], dry_run: bool) -> int:
    """Each clear entry of the person becomes a hashed one (or merges into their hashed entry on that channel)."""
    hashed = 0
    for a in addresses:
        address = suppression_address(a.channel, a.address)
        clear = Suppression.objects.filter(channel=a.channel, address=address).select_for_update()
        for entry in clear:
            hashed += 1
            if dry_run:
                continue
            earlier = Suppression.objects.filter(
                channel=a.channel, address_hash__in=suppression_hashes(address)
            ).first()
            if earlier is not None:  # erased before, and opted out again since: one entry, the stronger reason
                if REASON_STRENGTH[entry.reason] > REASON_STRENGTH[earlier.reason]:
                    Suppression.objects.filter(pk=earlier.pk).update(reason=entry.reason, source=entry.source)
                entry.delete()
                continue
            entry.address, entry.address_hash = None, suppression_hash(address)
            # The detail may quote them (a bounce's diagnostic); the message it followed is being blanked.
            entry.detail, entry.message = "", None
            entry.save(update_fields=["address", "address_hash", "detail", "message", "updated_at"])
    return hashed


def _audit_about(quotes: PersonQuotes, targets: Sequence[tuple[str, Sequence[str]]]) -> Q:
    about = quotes.mentioned_in("target_repr", json_fields=["details"])
    for label, ids in targets:
        if ids:
            about |= Q(target_type=label, target_id__in=ids)
    return about


def _admin_history_about(quotes: PersonQuotes, targets: Sequence[tuple[str, Sequence[str]]]) -> Q:
    about = quotes.mentioned_in("object_repr", "change_message")
    for label, ids in targets:
        app_label, model = label.split(".")
        if ids:
            about |= Q(content_type__app_label=app_label, content_type__model=model, object_id__in=ids)
    return about


def _scrub(
    model: type[Model],
    about: Q,
    quotes: PersonQuotes,
    dry_run: bool,
    *,
    repr_field: str = "",
) -> int:
    """Replace the quotes in the text and JSON columns of the rows `about` selects. A row about one of the person's
    objects (`repr_field`: its description, like an audit entry's target) loses that description whole."""
    text_fields = [
        f.name
        for f in model._meta.concrete_fields
        if f.get_internal_type() in ("CharField", "TextField", "JSONField") and not f.primary_key
    ]
    changed = []
    for row in model._default_manager.filter(about).only("pk", *text_fields):
        before = {name: getattr(row, name) for name in text_fields}
        for name in text_fields:
            value = before[name]
            setattr(row, name, quotes.json(value) if isinstance(value, dict | list) else quotes.text(value))
        if repr_field:
            setattr(row, repr_field, ERASED)
        if any(getattr(row, name) != before[name] for name in text_fields):
            changed.append(row)
    if not dry_run and changed:
        model._default_manager.bulk_update(changed, text_fields, batch_size=500)
    return len(changed)
