"""Which country a phone number is in: one parse per number, shared by the price estimate and the allowlists.

A message's number is looked at two or three times while it is created (the allowlist of its channel, its API
key's, its estimate): the answer is kept per number, so the parse (20–30 µs) happens once.
"""

from functools import lru_cache

import phonenumbers

from guard.services.phone_numbers import phone_number_parse

# Codes `phonenumbers` has numbers for: ISO 3166-1 alpha-2 codes of every country with a telephone network (and
# XK, Kosovo's user-assigned code). A country without one could never match a number.
PHONE_COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)


@lru_cache(maxsize=20_000)
def phone_country(number: str) -> str:
    """The ISO country of an E.164 number; "001" for a non-geographic range (+800, +882, +883: international
    networks), "" when it cannot be parsed. A number the metadata cannot place exactly is its calling code's main
    country (+44 → GB), as providers bill it."""
    parsed = phone_number_parse(number)  # shared with the quiet hours' time zones
    if parsed is None:
        return ""
    region = phonenumbers.region_code_for_number(parsed)
    if not region and parsed.country_code:
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return region if region and region != phonenumbers.UNKNOWN_REGION else ""
