"""API keys: `tid_<prefix>_<secret>`. We store the prefix (to find the row) and a SHA-256 of the whole key.

A plain SHA-256 is enough here, unlike for passwords: the secret is 256 random bits, so there is nothing to
guess, and checking it stays fast on every API request.

A key found valid is remembered in the process for API_KEY_CACHE_SECONDS, under the hash of the whole key (so
only the exact secret hits the cache): under load that saves a SELECT per request. Revoking clears it here at
once; another process notices within those seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from django.utils import timezone

from ..models import ApiKey

KEY_PREFIX = "tid"
API_KEY_CACHE_SECONDS = 5.0
# key hash -> (monotonic time the entry expires, the key)
_recently_authenticated: dict[str, tuple[float, ApiKey]] = {}


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, name: str, created_by=None) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret; the secret is never stored and cannot be shown again."""
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(name=name, prefix=prefix, key_hash=hash_key(raw_key), created_by=created_by)
    return api_key, raw_key


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key_hash = hash_key(raw_key)
    cached = _recently_authenticated.get(key_hash)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    api_key = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, key_hash):
        _recently_authenticated.pop(key_hash, None)
        return None
    now = timezone.now()
    # Touch last_used_at at most once a minute: one write per request would cost more than the request.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    _recently_authenticated[key_hash] = (time.monotonic() + API_KEY_CACHE_SECONDS, api_key)
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> None:
    _recently_authenticated.pop(api_key.key_hash, None)
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
