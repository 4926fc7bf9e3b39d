"""Idempotency keys: a client that sends the same `Idempotency-Key` again gets the original result, not a copy.

The unique constraint on (api_key, key) decides between requests racing with the same key: the first to insert
the key runs the create in the same transaction; the others wait on the constraint, then find the committed key
and replay what it points to. Any create endpoint can use `idempotent_create` (a batch: many messages, one key).

A key replays for IDEMPOTENCY_KEY_TTL_HOURS. After that it counts as unused (the request creates afresh) and the
reconciler deletes it (`idempotency_keys_prune`); the messages it created stay, no longer pointing at it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import ApiKey, IdempotencyKey

T = TypeVar("T")
MAX_KEY_LENGTH = 255


class IdempotencyKeyError(ValueError):
    """The key was used before for a different request; the message says so in words a client can act on."""


class IdempotencyKeyInvalid(IdempotencyKeyError):
    """The key itself is malformed (empty, too long, not printable)."""


def request_fingerprint(data: Any) -> str:
    """SHA-256 of the request body as canonical JSON, so the same body in another key order matches."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def expired_before() -> datetime:
    """Keys created before this no longer replay."""
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotency_keys_prune(*, limit: int = 5000) -> int:
    """Delete up to `limit` keys past IDEMPOTENCY_KEY_TTL_HOURS, oldest first; returns how many. Their messages
    and batches stay and only lose the link (SET_NULL), so the table stays the size of a day's keyed requests."""
    expired = IdempotencyKey.objects.filter(created_at__lt=expired_before()).order_by("created_at")
    ids = list(expired.values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    IdempotencyKey.objects.filter(pk__in=ids).delete()
    return len(ids)


def _check(record: IdempotencyKey, *, scope: str, fingerprint: str) -> None:
    if record.scope != scope or record.fingerprint != fingerprint:
        raise IdempotencyKeyError(
            f"The Idempotency-Key '{record.key}' was already used on {record.created_at:%Y-%m-%d %H:%M:%S %Z} "
            "with a different request. Send the same request to get its result, or use a new key."
        )


def idempotent_create(
    *,
    api_key: ApiKey,
    key: str,
    scope: str,
    fingerprint: str,
    create: Callable[[IdempotencyKey], T],
    replay: Callable[[IdempotencyKey], T],
) -> tuple[T, bool]:
    """Run `create(record)` once per (api_key, key); every other call gets `replay(record)`.

    Returns (result, created). Raises IdempotencyKeyInvalid for a malformed key, IdempotencyKeyError when the
    key was used with another request (a different fingerprint or endpoint).
    """
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyKeyInvalid(f"An Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.")
    # Outside any transaction: a replay needs no lock, and on SQLite a read before the insert would pin a snapshot.
    record = IdempotencyKey.objects.filter(api_key=api_key, key=key).first()
    if record is not None and record.created_at < expired_before():
        # Past its time but not yet swept: it is over, and this request starts afresh under the same key.
        IdempotencyKey.objects.filter(pk=record.pk).delete()
        record = None
    if record is None:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyKey.objects.create(
                        api_key=api_key, key=key, scope=scope, fingerprint=fingerprint
                    )
            except IntegrityError:
                record = None  # another request with this key committed first
            else:
                return create(record), True
        record = IdempotencyKey.objects.get(api_key=api_key, key=key)
    _check(record, scope=scope, fingerprint=fingerprint)
    try:
        return replay(record), False
    except ObjectDoesNotExist:
        if IdempotencyKey.objects.filter(pk=record.pk).exists():
            raise
    # The reconciler deleted the key between our read and the replay (it came of age meanwhile): it is over,
    # and this request starts afresh, as if it had come a moment later.
    return idempotent_create(
        api_key=api_key, key=key, scope=scope, fingerprint=fingerprint, create=create, replay=replay
    )
