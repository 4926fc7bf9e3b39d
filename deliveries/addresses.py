"""Recipient validation: E.164 phone numbers (with `phonenumbers`), email addresses, Messenger page-scoped ids."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email


def normalize_phone(value: str) -> str:
    """The number in E.164 (`+14155550100`), or ValidationError with a reason a person can act on."""
    return _phone_e164((value or "").strip(), settings.PHONE_DEFAULT_REGION)


# Parsing a number costs tens of microseconds, the largest part of validating a message: the same numbers come
# back (the same customers, retries, campaigns), so the answers are kept. Errors are not cached, only raised.
@lru_cache(maxsize=20_000)
def _phone_e164(raw: str, region: str) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        hint = "" if raw.startswith("+") else " Use E.164 format with the country code, like +14155550100."
        raise ValidationError(f"'{raw}' is not a phone number.{hint}") from None
    if not phonenumbers.is_valid_number(number):
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
