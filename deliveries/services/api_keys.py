"""API keys: `tid_<prefix>_<secret>`. We store the prefix (to find the row) and a SHA-256 of the whole key.

A plain SHA-256 is enough here, unlike for passwords: the secret is 256 random bits, so there is nothing to
guess, and checking it stays fast on every API request.

A key found valid is remembered in two places, under the hash of the whole key (so only the exact secret hits
it). In the shared cache (django-redis) for API_KEY_CACHE_SECONDS: every web process then finds it with one Redis
GET instead of a SELECT. And in the process itself for API_KEY_LOCAL_SECONDS (one second): a client sending many
messages a second costs no Redis round trip for its key, so a message stays one round trip (its enqueue). Revoking,
or any save or delete of the row, drops the key from this process at once and replaces the shared entry with an
"invalidated" marker for a few seconds, which the other processes see once their second is up; while the marker
stands lookups go to the database and nothing is cached, so a process that read the row just before the
revocation cannot put the old key back. An expiring key is checked against its expiry on every hit. If Redis does
not answer, the database decides (slower, never wrong).

What a key may do is its scopes (ApiScope; deliveries.api.permissions maps each endpoint to one), how fast its
rate (deliveries.api.throttling), which senders it may set its allowed_senders, and which countries it may send
SMS and WhatsApp to its allowed_countries (within the global lists: guard.services.destinations).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable
from datetime import datetime
from email.utils import parseaddr
from typing import NamedTuple

from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django_redis.exceptions import ConnectionInterrupted
from limits import parse_many
from redis.exceptions import RedisError

from guard.services.destinations import destination_refusal, key_countries_validate

from ..addresses import normalize_whatsapp
from ..models import ApiKey, ApiScope, Category
from .messages import ALPHANUMERIC_SENDER, MESSAGING_SERVICE_SID, MessageRequest

logger = logging.getLogger(__name__)

KEY_PREFIX = "tid"
# How long a valid key is remembered in the shared cache. It also bounds how long a revocation made while Redis
# was unreachable can go unnoticed by a process that finds the old entry once Redis answers again.
API_KEY_CACHE_SECONDS = 30
# How long an invalidated key is looked up in the database only: far longer than a lookup takes between reading
# the row and caching it, so no lookup that began before the change can cache what it read.
API_KEY_INVALIDATED_SECONDS = 10
INVALIDATED = "invalidated"
# How long a process trusts a key it found valid without asking Redis: how late, at most, another process sees a
# revocation.
API_KEY_LOCAL_SECONDS = 1.0
_local_keys: dict[str, tuple[ApiKey, float]] = {}  # key hash -> (key, monotonic time until which it is trusted)
CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)
FULL_ACCESS = [ApiScope.ADMIN.value]


class ApiKeyInvalid(ValueError):
    """A key cannot be created with these settings; the message says which one and why."""


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *,
    name: str,
    created_by: User | None = None,
    scopes: Iterable[str] | None = None,
    expires_at: datetime | None = None,
    rate: str = "",
    allowed_senders: Iterable[str] = (),
    allowed_countries: Iterable[str] = (),
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret; the secret is never stored and cannot be shown again.

    `scopes` None gives full access (the `admin` scope), as keys had before scopes existed. `rate` is a rate
    string like "100/second" (several joined with ";"); `allowed_senders` the senders the key may set;
    `allowed_countries` the countries it may send SMS and WhatsApp to, within the global lists. Raises
    ApiKeyInvalid naming the name, scope, rate, sender, country or expiry that is wrong.
    """
    max_name = ApiKey._meta.get_field("name").max_length or 0
    if not name.strip() or len(name) > max_name:
        raise ApiKeyInvalid(f"A key's name is 1 to {max_name} characters.")
    scopes = FULL_ACCESS if scopes is None else api_key_scopes_validate(scopes)
    rate = api_key_rate_validate(rate)
    senders = [api_key_sender_validate(sender) for sender in allowed_senders]
    countries = api_key_countries_validate(allowed_countries)
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiKeyInvalid("The expiry must be in the future.")
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=hash_key(raw_key),
        created_by=created_by,
        scopes=scopes,
        expires_at=expires_at,
        rate=rate,
        allowed_senders=list(dict.fromkeys(senders)),
        allowed_countries=countries,
    )
    return api_key, raw_key


def api_key_scopes_validate(scopes: Iterable[str]) -> list[str]:
    """The scopes, each once, in ApiScope's order; ApiKeyInvalid if one is not a scope."""
    wanted = {scope.strip() for scope in scopes if scope.strip()}
    unknown = sorted(wanted - set(ApiScope.values))
    if unknown:
        raise ApiKeyInvalid(f"Unknown scope {', '.join(unknown)}; the scopes are {', '.join(ApiScope.values)}.")
    if not wanted:
        raise ApiKeyInvalid(f"Give at least one scope: {', '.join(ApiScope.values)}.")
    return [scope for scope in ApiScope.values if scope in wanted]


def api_key_rate_validate(rate: str) -> str:
    """The rate, stripped, if the `limits` library reads it and it allows at least one request; else ApiKeyInvalid."""
    rate = (rate or "").strip()
    if not rate:
        return ""
    try:
        items = parse_many(rate)
    except ValueError:
        items = []
    if not items or any(item.amount < 1 for item in items):
        raise ApiKeyInvalid(f"'{rate}' is not a rate; write it like 100/second, 6000/minute or 10/second;1000/hour.")
    return rate


def api_key_sender_validate(sender: str) -> str:
    """A sender as allowed_senders stores it (see sender_identity); ApiKeyInvalid if it is not one."""
    try:
        return sender_identity(sender)
    except ValidationError:
        raise ApiKeyInvalid(
            f"'{sender.strip()}' is not a sender: give a phone number (+14155550100), a Messaging Service SID "
            "(MG…), an alphanumeric sender id or an email address."
        ) from None


def api_key_countries_validate(countries: Iterable[str]) -> list[str]:
    """A key's own country list (ISO codes, each once, in capitals); ApiKeyInvalid for an unknown code or one the
    global lists leave out (a key's list narrows them, never widens them)."""
    try:
        return key_countries_validate(countries)
    except ValueError as error:
        raise ApiKeyInvalid(str(error)) from None


def sender_identity(sender: str) -> str:
    """Who a sender sends as, in one spelling: an email sender's address in lower case (without its display
    name), a phone or WhatsApp sender in E.164 (without `whatsapp:`), a Messaging Service SID or an alphanumeric
    id as written. Raises ValidationError when it is none of them."""
    sender = sender.strip()
    if "@" in sender:
        _, address = parseaddr(sender)
        validate_email(address)
        return address.lower()
    if MESSAGING_SERVICE_SID.match(sender):
        return sender
    if ALPHANUMERIC_SENDER.match(sender) and not sender.replace(" ", "").isdigit():
        return sender
    return normalize_whatsapp(sender)


class MessageRefusal(NamedTuple):
    """Why a key may not create a message: the field at fault and a reason. `forbidden` refusals are the key's
    limits (403); the others read as the validation error the request would get without them (400)."""

    field: str
    reason: str
    forbidden: bool = True


def api_key_message_refusal(*, api_key: ApiKey, request: MessageRequest) -> MessageRefusal | None:
    """Why this key may not create this valid message, or None if it may.

    A transactional message reaches people who opted out, so it takes the transactional:send scope, as does
    `quiet_hours` false (a message that may wake its recipient); a sender
    must be one of the key's allowed_senders when it has a list (no sender, the configured one, is always
    allowed); a number must be in one of the key's allowed_countries when it has a list (the global lists are
    checked by message_request_validate); and a key without `admin` may only make a message wait for one of its
    own (another key's message is answered as one that does not exist). Costs no query.
    """
    if request.category == Category.TRANSACTIONAL and not api_key.has_scope(ApiScope.TRANSACTIONAL_SEND):
        return MessageRefusal("category", f"This key lacks the scope {ApiScope.TRANSACTIONAL_SEND}.")
    if not request.quiet_hours and not api_key.has_scope(ApiScope.TRANSACTIONAL_SEND):
        # Waking someone up is the same trust as reaching someone who opted out: the transactional scope.
        return MessageRefusal(
            "quiet_hours", f"Sending inside the recipient's quiet hours takes the scope {ApiScope.TRANSACTIONAL_SEND}."
        )
    if api_key.allowed_senders and request.sender:
        try:
            identity = sender_identity(request.sender)
        except ValidationError:
            identity = None
        if identity not in api_key.allowed_senders:
            allowed = ", ".join(api_key.allowed_senders)
            return MessageRefusal(
                "sender", f"This key may not use the sender '{request.sender}'; its senders are {allowed}."
            )
    if api_key.allowed_countries:
        refusal = destination_refusal(
            channel=request.channel, recipient=request.recipient, key_countries=api_key.allowed_countries
        )
        if refusal:
            return MessageRefusal("to", refusal, forbidden=False)
    parent = request.dependency.get("depends_on")
    if parent is not None and parent.api_key_id != api_key.pk and not api_key.has_scope(ApiScope.ADMIN):
        return MessageRefusal("depends_on", f"No message with id {parent.pk}.", forbidden=False)
    return None


def _cache_key(key_hash: str) -> str:
    return f"tidings:api-key:{key_hash}"


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key` (not revoked, not expired), or None."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key_hash = hash_key(raw_key)
    now = timezone.now()
    local = _local_keys.get(key_hash)
    if local is not None and local[1] > time.monotonic() and (local[0].expires_at is None or local[0].expires_at > now):
        return local[0]
    try:
        cached = cache.get(_cache_key(key_hash))
    except CACHE_ERRORS:  # Redis unreachable: the database answers alone
        cached = INVALIDATED
    if isinstance(cached, ApiKey) and (cached.expires_at is None or cached.expires_at > now):
        _local_keys[key_hash] = (cached, time.monotonic() + API_KEY_LOCAL_SECONDS)
        return cached
    api_key = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if (
        api_key is None
        or not hmac.compare_digest(api_key.key_hash, key_hash)
        or (api_key.expires_at is not None and api_key.expires_at <= now)
    ):
        return None
    # Touch last_used_at at most once a minute: one write per request would cost more than the request.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    if cached is None:
        remember_for = API_KEY_CACHE_SECONDS
        if api_key.expires_at is not None:
            remember_for = min(remember_for, int((api_key.expires_at - now).total_seconds()) + 1)
        # add, not set: an "invalidated" marker written since the row was read must win. Not remembering only
        # costs the next lookup a SELECT.
        with contextlib.suppress(*CACHE_ERRORS):
            cache.add(_cache_key(key_hash), api_key, timeout=remember_for)
        _local_keys[key_hash] = (api_key, time.monotonic() + API_KEY_LOCAL_SECONDS)
    return api_key


def api_key_forget(*, api_key: ApiKey) -> None:
    """Make every process look this key up in the database again, now and once the current transaction commits
    (until then the database still shows the row as it was)."""

    def invalidate() -> None:
        _local_keys.pop(api_key.key_hash, None)
        try:
            cache.set(_cache_key(api_key.key_hash), INVALIDATED, timeout=API_KEY_INVALIDATED_SECONDS)
        except CACHE_ERRORS:
            logger.warning(
                "Could not invalidate API key %s in the cache (Redis unreachable): processes may accept it for "
                "up to %s seconds once Redis answers again.",
                api_key.prefix,
                API_KEY_CACHE_SECONDS,
            )

    invalidate()
    transaction.on_commit(invalidate)


def api_key_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key_forget(api_key=api_key)


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def _forget_changed_key(*, instance: ApiKey, created: bool = False, **kwargs: object) -> None:
    # A key changed or deleted anywhere (the admin, a shell, a migration) is looked up afresh by every process.
    # A new one has nothing to forget.
    if instance.key_hash and not created:
        api_key_forget(api_key=instance)


def api_key_campaign_refusal(key: ApiKey) -> str | None:
    """Why this key may not launch a campaign: its own destination countries or spend cap bind the messages it
    sends, but a campaign's messages are the campaign's (its contacts, its fan-out), not the key's, so they would
    escape them. None: it may."""
    from guard.models import SpendCap

    if key.allowed_countries:
        bound = f"its own destination countries ({', '.join(key.allowed_countries)})"
    elif SpendCap.objects.filter(scope=SpendCap.Scope.API_KEY, scope_value=str(key.pk)).exists():
        bound = "its own spend cap"
    else:
        return None
    return (
        f"This key has {bound}, which a campaign's messages would not be bound by: launch it from the admin, or "
        "with a key without them."
    )
