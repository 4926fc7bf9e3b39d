"""The phonenumbers shortcuts (numbers already written in E.164, the first region of a shared calling code) answer
exactly as phonenumbers.parse and phonenumbers.is_valid_number."""

import random

import phonenumbers
from django.core.exceptions import ValidationError

from deliveries.addresses import _phone_e164
from deliveries.shims.phonenumbers import _is_valid_number, _parse_canonical_e164
from tests.deliveries.test_addresses import by_parse


def by_normalize(raw: str) -> str | None:
    _phone_e164.cache_clear()
    try:
        return _phone_e164(raw, "US")
    except ValidationError:
        return None


def candidates() -> list[str]:
    """For every region and non-geographic calling code: its example numbers of each type in E.164, the same with
    digits changed, cut or added, and with the national prefix or a zero put in front of the national number."""
    rng = random.Random(6)
    examples = []
    regions = [(region, None) for region in phonenumbers.SUPPORTED_REGIONS]
    regions += [("001", code) for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS]
    for region, code in regions:
        for kind in phonenumbers.PhoneNumberType.values():
            number = (
                phonenumbers.example_number_for_non_geo_entity(code)
                if code
                else phonenumbers.example_number_for_type(region, kind)
            )
            if number is not None:
                examples.append(number)
    raws = set()
    for number in examples:
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        cc, national = str(number.country_code), e164[1 + len(str(number.country_code)) :]
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
            number.country_code, phonenumbers.region_code_for_country_code(number.country_code)
        )
        raws.update({e164, f"+{cc}0{national}", f"+{cc}{national[:-1]}", f"+{cc}{national}7"})
        if metadata is not None and metadata.national_prefix:
            raws.add(f"+{cc}{metadata.national_prefix}{national}")
        for _ in range(5):
            digits = list(national)
            digits[rng.randrange(len(digits))] = str(rng.randrange(10))
            raws.add(f"+{cc}{''.join(digits)}")
    return sorted(raws)


def test_the_e164_shortcut_gives_what_parse_gives_for_every_calling_code():
    raws = candidates()
    assert len(raws) > 3000
    disagreements = [(raw, by_parse(raw), by_normalize(raw)) for raw in raws if by_parse(raw) != by_normalize(raw)]
    assert disagreements == []
    # The shortcut is taken for most of them (else this test would prove nothing about it).
    taken = sum(1 for raw in raws if _parse_canonical_e164(raw) is not None)
    assert taken > len(raws) / 2


def test_validity_by_the_first_region_agrees_with_is_valid_number_for_every_calling_code():
    numbers = []
    for raw in candidates():
        try:
            numbers.append(phonenumbers.parse(raw, None))
        except phonenumbers.NumberParseException:
            continue
    disagreements = [
        (number, phonenumbers.is_valid_number(number))
        for number in numbers
        if _is_valid_number(number) != phonenumbers.is_valid_number(number)
    ]
    assert disagreements == []
    # Numbers of shared calling codes valid for their code's first region, which the shortcut answers alone: many.
    first_region = [
        number
        for number in numbers
        if len(regions := phonenumbers.COUNTRY_CODE_TO_REGION_CODE[number.country_code]) > 1
        and phonenumbers.is_valid_number_for_region(number, regions[0])
    ]
    assert len(first_region) > 100
