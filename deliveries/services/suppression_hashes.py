"""Keyed hashes of suppressed addresses: how an erased person's opt-out is kept without their address.

A hash is HMAC-SHA256 of the address as the suppression list writes it (`suppression_address`), made with
SUPPRESSION_HASH_KEY. It is recognised with every key it could have been made with: the current one and those in
SUPPRESSION_HASH_KEY_FALLBACKS. Without SUPPRESSION_HASH_KEY (development, tests), the current key is derived from
SECRET_KEY, and the keys derived from SECRET_KEY_FALLBACKS are recognised too. Without the key nobody can tell
whose entry it is, short of hashing every candidate address with the key: keep it as secret as SECRET_KEY.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache, lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_DERIVATION_SALT = b"tidings.suppression_hash"
_KEY_SETTINGS = {"SUPPRESSION_HASH_KEY", "SUPPRESSION_HASH_KEY_FALLBACKS", "SECRET_KEY", "SECRET_KEY_FALLBACKS"}


def _derived(secret: str) -> bytes:
    return hmac.new(secret.encode(), _DERIVATION_SALT, hashlib.sha256).digest()


@cache
def suppression_hash_keys() -> tuple[bytes, ...]:
    """Every key a stored hash may have been made with, the current one (new hashes) first, without repeats.

    The worker probes every recipient with each key, so a deployment with a key of its own pays for its keys only,
    not also for those derived from SECRET_KEY (production never had any other: it refuses to start without one)."""
    fallbacks = [key.encode() for key in settings.SUPPRESSION_HASH_KEY_FALLBACKS if key]
    if settings.SUPPRESSION_HASH_KEY:
        keys = [settings.SUPPRESSION_HASH_KEY.encode(), *fallbacks]
    else:
        secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        keys = [_derived(secret) for secret in secrets if secret] + fallbacks
    return tuple(dict.fromkeys(keys))


def suppression_hash(normalised_address: str) -> str:
    """The hash an entry is stored under now (the current key)."""
    return _hash(suppression_hash_keys()[0], normalised_address)


# The worker asks for the hashes of every recipient of every batch; the same recipients come back (retries,
# campaigns), and a few HMACs per address are cheap but not free.
@lru_cache(maxsize=20_000)
def suppression_hashes(normalised_address: str) -> tuple[str, ...]:
    """The hashes this address may be stored under, one per key."""
    return tuple(_hash(key, normalised_address) for key in suppression_hash_keys())


def _hash(key: bytes, normalised_address: str) -> str:
    return hmac.new(key, normalised_address.encode(), hashlib.sha256).hexdigest()


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: object) -> None:
    if setting in _KEY_SETTINGS:
        suppression_hash_keys.cache_clear()
        suppression_hashes.cache_clear()
