"""Parsing a recipient's phone number once for the guard's questions about it (its country, its time zones)."""

from functools import lru_cache

import phonenumbers


# A message's number is asked about by more than one control (the price's country, the quiet hours' zones), at
# tens of microseconds a parse: the last numbers' parses are kept so that each number is parsed once.
# PhoneNumber objects are never changed after parsing, so sharing them is safe.
@lru_cache(maxsize=4096)
def phone_number_parse(number: str) -> phonenumbers.PhoneNumber | None:
    """The number (E.164) parsed, or None when it is not one."""
    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
