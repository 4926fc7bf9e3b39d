"""Python 3.11's urllib.parse: `quote_plus` / `urlencode(doseq=True)` of the forms provider clients post.

urllib's quoting loops over the bytes in Python, a tenth of the CPU of a Twilio call. `form_quote` writes the same
bytes with one str.replace per kind of character to escape that the text holds (ASCII text: URLs, numbers, most
message texts), all in C, and a regex callback per run of characters for other text. Switch: `quote_plus`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus, urlencode

from . import shim_enabled, version_check

# Python 3.7 made "~" unreserved; the escapes below are 3.11's, checked character by character by the test.
version_check("quote_plus", "python", ">=3.11,<3.12")

# What application/x-www-form-urlencoded leaves as it is (urllib's always-safe characters), and the space.
_FORM_UNSAFE = re.compile(r"[^A-Za-z0-9_.~ -]+")
# The ASCII characters it escapes, each with its escape, and the space (written "+").
_FORM_ASCII_ESCAPES = {chr(code): f"%{code:02X}" for code in range(128) if _FORM_UNSAFE.match(chr(code))}
_FORM_ASCII_UNSAFE = frozenset([*_FORM_ASCII_ESCAPES, " "])


def _percent_encoded(match: re.Match) -> str:
    return "".join([f"%{byte:02X}" for byte in match.group().encode()])


def _form_quote(value: str) -> str:
    """`urllib.parse.quote_plus(value)`, byte for byte."""
    if not value.isascii():
        return _FORM_UNSAFE.sub(_percent_encoded, value).replace(" ", "+")
    present = _FORM_ASCII_UNSAFE.intersection(value)
    if not present:
        return value
    # "%" first, so that no escape written here is escaped again; the space last, after any "+" became "%2B".
    if "%" in present:
        value = value.replace("%", "%25")
    for character in present - {"%", " "}:
        value = value.replace(character, _FORM_ASCII_ESCAPES[character])
    return value.replace(" ", "+") if " " in present else value


def _form_encode(data: Mapping[str, Any]) -> str:
    """`urllib.parse.urlencode(data, doseq=True)` for a form of strings and lists of strings (what the provider
    clients send), through _form_quote; anything else goes to urlencode itself."""
    parts = []
    for key, value in data.items():
        if isinstance(value, str) and isinstance(key, str):
            parts.append(f"{_form_quote(key)}={_form_quote(value)}")
        elif isinstance(value, list | tuple) and isinstance(key, str) and all(isinstance(item, str) for item in value):
            quoted_key = _form_quote(key)
            parts.extend(f"{quoted_key}={_form_quote(item)}" for item in value)
        else:
            return urlencode(data, doseq=True)
    return "&".join(parts)


def _urlencode(data: Mapping[str, Any]) -> str:
    return urlencode(data, doseq=True)


def _quote_plus(value: str) -> str:
    return quote_plus(value)


form_quote: Callable[[str], str] = _form_quote if shim_enabled("quote_plus") else _quote_plus
form_encode: Callable[[Mapping[str, Any]], str] = _form_encode if shim_enabled("quote_plus") else _urlencode
