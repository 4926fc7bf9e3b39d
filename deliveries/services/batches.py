"""`POST /api/v1/messages/batch/`: many messages in one request, each checked like a single one.

Each item is the defaults with the item's own fields on top, validated by the same serializer and service as
`POST /api/v1/messages/` (deliveries.services.messages.message_request_validate), so an item gets exactly the
errors it would get alone. Valid items are stored through messages_create_many (chunked inserts, one Redis
pipeline per chunk). With `atomic`, one invalid item means nothing is stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from content.models import MessageTemplate
from deliveries.models import ApiKey, Batch, IdempotencyKey
from deliveries.services.bulk import messages_create_many

MAX_BATCH = 10_000
CHUNK_SIZE = 2000  # messages per transaction when a batch is not atomic


@dataclass
class BatchOutcome:
    batch: Batch | None
    accepted: int = 0
    rejected: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    held: int = 0  # accepted, but held for review by the velocity limits (each item says why)

    def as_response(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch.pk if self.batch else None,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "held": self.held,
            "results": self.results,
        }


def batch_templates(items: list[Any], defaults: dict[str, Any]) -> dict[str, MessageTemplate]:
    """The templates the items name, fetched in one query (with their translations) instead of one per item."""
    slugs = {item.get("template") for item in [defaults, *items] if isinstance(item, dict)}
    slugs = {slug for slug in slugs if isinstance(slug, str) and slug}
    return {t.slug: t for t in MessageTemplate.objects.filter(slug__in=slugs).prefetch_related("translations")}


def batch_messages_create(
    *,
    defaults: dict[str, Any],
    messages: list[Any],
    atomic: bool,
    validate_item: Callable[[dict[str, Any]], tuple[Any, Any]],
    api_key: ApiKey | None = None,
    created_by: User | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> BatchOutcome:
    """Validate every item with `validate_item(fields) -> (MessageRequest, RenderedContent)` (which raises
    ItemInvalid with the item's errors), then store the valid ones, or none of them if `atomic` and one failed.
    """
    valid: list[tuple[int, Any]] = []
    errors: dict[int, dict[str, Any]] = {}
    for index, item in enumerate(messages):
        if not isinstance(item, dict):
            errors[index] = {"non_field_errors": ["Each message must be a JSON object."]}
            continue
        try:
            valid.append((index, validate_item({**defaults, **item})))
        except ItemInvalid as invalid:
            errors[index] = invalid.errors
    if atomic and errors:
        return BatchOutcome(
            batch=None,
            rejected=len(errors),
            results=[{"index": index, "errors": item_errors} for index, item_errors in sorted(errors.items())],
        )
    # Without `atomic` each chunk commits on its own, so what was stored before a failure stays stored. A batch
    # of one chunk is one transaction either way, so it is taken here: the Batch row commits with its messages.
    with transaction.atomic() if atomic or len(valid) <= CHUNK_SIZE else contextlib.nullcontext():
        batch = Batch.objects.create(
            kind=Batch.Kind.API,
            api_key=api_key,
            created_by=created_by,
            rejected=len(errors),
            accepted=len(valid),
            idempotency_key=idempotency_key,
        )
        created = messages_create_many(
            items=(pair for _, pair in valid),
            api_key=api_key,
            created_by=created_by,
            batch=batch,
            chunk_size=CHUNK_SIZE,
            collect_ids=True,
        )
    ids = dict(zip((index for index, _ in valid), created.ids, strict=True))
    results: list[dict[str, Any]] = [
        {"index": index, "id": ids[index]} if index in ids else {"index": index, "errors": errors[index]}
        for index in range(len(messages))
    ]
    if created.holds:
        # A held item says so, with the reason: stored, but not sent until a person releases it.
        reasons = {pk: reason for pk, _key, reason in created.holds}
        for result in results:
            if result.get("id") in reasons:
                result.update(status="held", reason=reasons[result["id"]])
    outcome = BatchOutcome(batch=batch, accepted=len(valid), rejected=len(errors), results=results, held=created.held)
    finished: dict[str, Any] = {"finished_at": timezone.now()}
    if idempotency_key is not None:
        # Kept for a repeat of the request only; without a key there is none to answer (and encoding a
        # 10,000-item answer twice costs more than some of the batch's inserts).
        finished["response"] = outcome.as_response()
    Batch.objects.filter(pk=batch.pk).update(**finished)
    return outcome


def batch_outcome_replay(*, batch: Batch) -> BatchOutcome:
    """The answer a stored API batch was given, for a client repeating the request (see the Idempotency-Key
    note in docs/campaigns.md)."""
    response = batch.response
    return BatchOutcome(
        batch=batch,
        accepted=response["accepted"],
        rejected=response["rejected"],
        results=response["results"],
        held=response.get("held", 0),  # answers stored before velocity limits had none
    )


class ItemInvalid(ValueError):
    def __init__(self, errors: dict[str, Any]):
        super().__init__(str(errors))
        self.errors = errors
