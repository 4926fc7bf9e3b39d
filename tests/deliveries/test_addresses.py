"""Phone validation: numbers written any way normalise to E.164 as phonenumbers says, with a reason when refused.
The shortcuts behind it are compared with phonenumbers in tests/deliveries/shims/test_phonenumbers.py."""

import phonenumbers
import pytest
from django.core.exceptions import ValidationError

from deliveries.addresses import _phone_e164, normalize_phone


def by_parse(raw: str) -> str | None:
    """What validation gave before the shortcut: parse, validate, format."""
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("+14155550100", "plain E.164"),
        ("+1 415 555 0100", "spaces: parse"),
        ("+1 (415) 555-2671", "punctuation: parse"),
        ("+447400123456", "UK mobile"),
        ("+4407400123456", "a trunk zero after the country code: parse strips it"),
    ],
)
def test_numbers_written_any_way_normalise_as_before(raw, why):
    _phone_e164.cache_clear()
    assert by_parse(raw) is not None
    assert normalize_phone(raw) == by_parse(raw), why


def test_an_invalid_number_in_e164_shape_is_still_refused_with_the_reason():
    with pytest.raises(ValidationError, match="not a valid phone number"):
        normalize_phone("+11234567890")  # no US area code starts with 1


def test_a_changed_default_region_takes_effect_at_once(settings):
    settings.PHONE_DEFAULT_REGION = None
    with pytest.raises(ValidationError, match="Use E.164 format"):
        normalize_phone("(415) 555-2671")
    settings.PHONE_DEFAULT_REGION = "US"
    assert normalize_phone("(415) 555-2671") == "+14155552671"
