"""Recipient validation: E.164 phone numbers (with `phonenumbers`), email addresses, Messenger page-scoped ids."""

from __future__ import annotations

import re
from functools import cache, lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.core.validators import validate_email
from django.dispatch import receiver
from phonenumbers import PhoneMetadata

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
    number = _parse_canonical_e164(raw)
    if number is not None and _is_valid_number(number):
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if e164 == raw:
            return raw
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        hint = "" if raw.startswith("+") else " Use E.164 format with the country code, like +14155550100."
        raise ValidationError(f"'{raw}' is not a phone number.{hint}") from None
    if not _is_valid_number(number):
        raise ValidationError(f"'{raw}' is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _is_valid_number(number: phonenumbers.PhoneNumber) -> bool:
    """phonenumbers.is_valid_number, the same answer, in a third of the time for the most common numbers.

    For a calling code shared by several regions (+1, +7, +44, +61...), is_valid_number first finds the region:
    it tries the regions in order, and one without leading digits by checking the number's type against it;
    then it checks the type again against the region found. A number valid for the first region is that
    region's whenever that region has no leading digits, so it is valid, and one check says so: for a US number
    5 us instead of 16. Anything else goes to is_valid_number. tests/deliveries/test_addresses.py compares both.
    """
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code, ())
    first = regions[0] if len(regions) > 1 else None
    if first and _checked_by_type(first) and phonenumbers.is_valid_number_for_region(number, first):
        return True
    return phonenumbers.is_valid_number(number)


@cache
def _checked_by_type(region: str) -> bool:
    """Whether region_code_for_number recognises the region's numbers by their type (no leading digits)."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    return metadata is not None and metadata.leading_digits is None


_E164_SHAPE = re.compile(r"\+[1-9][0-9]{1,16}")


def _parse_canonical_e164(raw: str) -> phonenumbers.PhoneNumber | None:
    """The number `phonenumbers.parse` gives for `raw` when `raw` is written in E.164 (`+`, then digits) and starts
    with no national prefix that parse would strip; None otherwise (parse decides). Most numbers given to an API
    or in a bulk file are written so, and this skips parse's general work (punctuation, letters, extensions,
    national formats), which is half the cost of validating them. The caller still validates the number and
    takes this answer only if it formats back to `raw` exactly (a leading zero, say, would not).
    tests/deliveries/test_addresses.py checks it against parse for every country calling code."""
    if not _E164_SHAPE.fullmatch(raw):
        return None
    digits = raw[1:]
    for length in (1, 2, 3):  # country calling codes are prefix-free, so the first one found is the one
        country_code = int(digits[:length])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[length:]
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if not national or (prefix and _national_prefix(prefix).match(national)):
        return None
    return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))


@cache
def _national_prefix(pattern: str) -> re.Pattern:
    return re.compile(pattern)


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
