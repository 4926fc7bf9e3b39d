"""Language codes and time zones of contacts and templates: normalised, validated, matched."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError


@cache
def _known_languages() -> frozenset[str]:
    return frozenset(code.lower() for code, _name in settings.LANGUAGES)


def normalize_language(value: str) -> str:
    """A language code as Django writes it (`pt-br`), or ValidationError. Accepts `pt_BR`, `PT-br` and the
    like; a regional variant Django does not list is accepted when its language is (`fr-be` for `fr`)."""
    code = (value or "").strip().replace("_", "-").lower()
    if not code:
        raise ValidationError("Give a language code, like 'en' or 'pt-br'.")
    if code not in _known_languages() and code.split("-")[0] not in _known_languages():
        raise ValidationError(f"'{value}' is not a language code Tidings knows (like 'en', 'fr' or 'pt-br').")
    return code


def language_candidates(code: str) -> list[str]:
    """The codes to try, best first, for someone who reads `code`: `pt-br` then `pt`."""
    code = (code or "").lower()
    if not code:
        return []
    base = code.split("-")[0]
    return [code] if base == code else [code, base]


def normalize_time_zone(value: str) -> str:
    """An IANA time zone name in its canonical spelling (`Europe/Paris` for `europe/paris`), or ValidationError."""
    name = _canonical_zones().get((value or "").strip().lower())
    if name is None:
        raise ValidationError(f"'{value}' is not an IANA time zone name (like 'Europe/Paris' or 'UTC').")
    return name


@cache
def _canonical_zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}
