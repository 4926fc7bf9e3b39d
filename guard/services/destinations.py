"""Destination allowlists (geo permissions): the countries SMS, MMS and WhatsApp may be sent to (docs/guard.md).

SMS_ALLOWED_COUNTRIES and WHATSAPP_ALLOWED_COUNTRIES list ISO codes (empty: every country; MMS is SMS with media,
so it follows SMS's list). An API key's own list can only narrow its channel's: what it may reach is the
intersection. Deliveries asks here before it creates a message; email and Messenger have no destination country.
With no list the answer costs no parse, so the hot path pays nothing for a control it does not use.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from content.models import Channel
from guard.services.countries import PHONE_COUNTRIES, phone_country

# The channel's list, by the name of its setting (the name is part of the reason a refusal gives).
ALLOWLIST_SETTINGS = {Channel.SMS.value: "SMS_ALLOWED_COUNTRIES", Channel.WHATSAPP.value: "WHATSAPP_ALLOWED_COUNTRIES"}
# How a refusal names a number whose country cannot be told (a campaign counts its skips under it).
UNKNOWN_COUNTRY = "unknown"


@cache
def allowed_countries(channel: str) -> tuple[str, ...]:
    """The channel's global list (empty: every country), read once: this is asked for every message."""
    name = ALLOWLIST_SETTINGS.get(channel)
    return tuple(getattr(settings, name)) if name else ()


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ALLOWLIST_SETTINGS.values():
        allowed_countries.cache_clear()


def destinations_restricted(channel: str) -> bool:
    """Whether the channel has a global list: when not, only an API key's own list can refuse a number."""
    return bool(allowed_countries(channel))


@dataclass(frozen=True)
class DestinationRefusal:
    country: str  # the ISO code, or UNKNOWN_COUNTRY
    reason: str  # a sentence naming the channel, the country and the list that refuses it


def destination_refused(
    *, channel: str, recipient: str, key_countries: Collection[str] = ()
) -> DestinationRefusal | None:
    """Why a message to `recipient` (normalised: E.164, or whatsapp:+…) on `channel` may not be created, or None.

    `key_countries` is the API key's own list (empty: the global list alone). A number whose country cannot be
    told (a non-geographic range such as +882, where pumping often goes) is refused whenever a list applies.
    """
    if channel not in ALLOWLIST_SETTINGS:
        return None
    allowed = allowed_countries(channel)
    if not allowed and not key_countries:
        return None
    country = phone_country(recipient.removeprefix("whatsapp:"))
    in_global = not allowed or country in allowed
    if in_global and (not key_countries or country in key_countries):
        return None
    if not in_global:
        source, listed = ALLOWLIST_SETTINGS[channel], allowed
    else:
        source, listed = "this API key's countries", tuple(key_countries)
    if country not in PHONE_COUNTRIES:
        reason = (
            f"Sending {channel} to {recipient} is not allowed: its country cannot be told from the number, and "
            f"only listed countries are ({source}: {', '.join(listed)})."
        )
        return DestinationRefusal(UNKNOWN_COUNTRY, reason)
    reason = f"Sending {channel} to {country} is not allowed ({source}: {', '.join(listed)})."
    return DestinationRefusal(country, reason)


def destination_refusal(*, channel: str, recipient: str, key_countries: Collection[str] = ()) -> str | None:
    """destination_refused's reason alone: what a 400 or a form error says."""
    refused = destination_refused(channel=channel, recipient=recipient, key_countries=key_countries)
    return refused.reason if refused else None


def countries_problem(codes: Iterable[str]) -> str | None:
    """What is wrong with a list of country codes (an unknown one), or None."""
    unknown = [code for code in codes if code not in PHONE_COUNTRIES]
    if not unknown:
        return None
    hint = " (the United Kingdom is GB)" if "UK" in unknown else ""
    verb = "is not an ISO 3166-1 alpha-2 code" if len(unknown) == 1 else "are not ISO 3166-1 alpha-2 codes"
    return f"{', '.join(unknown)} {verb} of a country with phone numbers{hint}."


def key_countries_validate(codes: Iterable[str]) -> list[str]:
    """An API key's own list: each code once, in capitals. Raises ValueError for an unknown code, or one outside
    a global list that is set (a key's list narrows the global ones, it never widens them)."""
    countries = list(dict.fromkeys(code.strip().upper() for code in codes if code.strip()))
    problem = countries_problem(countries)
    if problem:
        raise ValueError(problem)
    for channel, name in ALLOWLIST_SETTINGS.items():
        allowed = allowed_countries(channel)
        outside = [code for code in countries if allowed and code not in allowed]
        if outside:
            raise ValueError(
                f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in {name} ({', '.join(allowed)}): "
                "a key's countries can only narrow the ones allowed to all."
            )
    return countries
