"""Recipient validation: E.164 phone numbers (with `phonenumbers`), email addresses, Messenger page-scoped ids."""

from __future__ import annotations

from functools import cache, lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.core.validators import validate_email
from django.dispatch import receiver

from .shims.phonenumbers import is_valid_number, parse_canonical_e164

# phonenumbers looks up each metadata pattern with re.compile() on every check (about twenty per number), going
# through re's small, shared cache each time; its own cache keeps them compiled: 13 % off validating a number.
phonenumbers.enable_pattern_cache()


def normalize_phone(value: str) -> str:
    """The number in E.164 (`+14155550100`), or ValidationError with a reason a person can act on."""
    return _phone_e164((value or "").strip(), default_region())


@cache
def default_region() -> str | None:
    """PHONE_DEFAULT_REGION, read once: each read of a setting goes through the LazySettings proxy, and at
    thousands of numbers a second that was a tenth of validating them. Forgotten when settings change (tests)."""
    return settings.PHONE_DEFAULT_REGION


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs) -> None:
    if setting == "PHONE_DEFAULT_REGION":
        default_region.cache_clear()


# Parsing a number costs tens of microseconds, the largest part of validating a message: the same numbers come
# back (the same customers, retries, campaigns), so the answers are kept. Errors are not cached, only raised.
@lru_cache(maxsize=20_000)
def _phone_e164(raw: str, region: str) -> str:
    # Most numbers given to an API or in a bulk file are written in E.164: the shim recognises them cheaply.
    number = parse_canonical_e164(raw)
    if number is not None and is_valid_number(number):
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if e164 == raw:
            return raw
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        hint = "" if raw.startswith("+") else " Use E.164 format with the country code, like +14155550100."
        raise ValidationError(f"'{raw}' is not a phone number.{hint}") from None
    if not is_valid_number(number):
        raise ValidationError(f"'{raw}' is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    raw = (value or "").strip()
    try:
        validate_email(raw)
    except ValidationError:
        raise ValidationError(f"'{raw}' is not a valid email address.") from None
    local, _, domain = raw.rpartition("@")
    return f"{local}@{domain.lower()}"


def normalize_whatsapp(value: str) -> str:
    """A WhatsApp number is stored in E.164 without Twilio's `whatsapp:` prefix (the backend adds it), so one
    person has one suppression entry whichever way the address was written."""
    return normalize_phone((value or "").strip().removeprefix("whatsapp:"))


def normalize_psid(value: str) -> str:
    """A Messenger page-scoped id (PSID): the digits Meta gives each person per page."""
    raw = (value or "").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 64):
        raise ValidationError(
            f"'{raw}' is not a Messenger PSID: use the page-scoped id (digits) from the person's webhook events."
        )
    return raw


NORMALIZERS = {
    "sms": normalize_phone,
    "email": normalize_email,
    "whatsapp": normalize_whatsapp,
    "messenger": normalize_psid,
}


def normalize_recipient(channel: str, value: str) -> str:
    return NORMALIZERS[channel](value)
