"""Estimates: what a message will cost, from the price list (docs/guard.md).

An SMS costs its segments times the price per segment to its destination country (GSM-7 or UCS-2 decides the
segments: content.services.sms_segments); WhatsApp a message times its country's price; email and Messenger a
message times the channel's unit price (its row with a blank country). The price list is read once and kept in each
process for PRICE_CACHE_SECONDS, so an estimate costs no query; a change saved in this process applies at once,
elsewhere within those seconds.
"""

import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from content.models import Channel
from content.services.sms_segments import sms_segments
from guard.models import ANY_COUNTRY, Price
from guard.services.countries import phone_country

# Channels whose price depends on the destination's country (the rest have one unit price).
COUNTRY_PRICED = {Channel.SMS, Channel.WHATSAPP}


@dataclass(frozen=True)
class Estimate:
    cost: Decimal | None  # None: the price list has no price for this destination
    currency: str
    units: int  # SMS segments; 1 on other channels
    country: str  # ISO alpha-2 code of the destination, "" where the channel has none or it is unknown

    def describe(self) -> str:
        if self.cost is None:
            where = f" to {self.country}" if self.country else ""
            return f"no price{where}"
        return f"{self.cost} {self.currency}"


def destination_country(channel: str, recipient: str) -> str:
    """The ISO country of a phone recipient (E.164, or whatsapp:+…); "" for other channels or an unknown number."""
    if channel not in COUNTRY_PRICED:
        return ANY_COUNTRY
    return phone_country(recipient.removeprefix("whatsapp:"))


def billed_units(channel: str, body: str) -> int:
    """What the provider bills: SMS segments (at least one: an empty body with media is one MMS), else one."""
    if channel == Channel.SMS:
        return max(1, sms_segments(body).segments)
    return 1


def message_cost_estimate(*, channel: str, recipient: str, body: str) -> tuple[Decimal | None, str]:
    """(cost, currency) of one message, or (None, "") without a price: what every new message stores. It parses the
    number only when the channel has prices by country, so that a price list without them costs nothing per
    message."""
    prices = price_list()
    if channel not in prices.channels:
        return None, ""
    if channel not in prices.by_country:
        price, currency = prices.rows[(channel, ANY_COUNTRY)]
        return price * billed_units(channel, body), currency
    found = cost_estimate(channel=channel, recipient=recipient, body=body)
    return found.cost, found.currency


def destination_priced(*, channel: str, recipient: str) -> bool:
    """Whether the price list now has a price for this destination (its country's row, or the channel's
    catch-all)."""
    rows = price_list().rows
    return (channel, ANY_COUNTRY) in rows or (channel, destination_country(channel, recipient)) in rows


def cost_estimate(*, channel: str, recipient: str, body: str) -> Estimate:
    country = destination_country(channel, recipient)
    units = billed_units(channel, body)
    rows = price_list().rows
    found = rows.get((channel, country)) or rows.get((channel, ANY_COUNTRY))
    if found is None:
        return Estimate(cost=None, currency="", units=units, country=country)
    price, currency = found
    return Estimate(cost=price * units, currency=currency, units=units, country=country)


@dataclass(frozen=True)
class PriceList:
    rows: dict[tuple[str, str], tuple[Decimal, str]]  # (channel, country) -> (price, currency)
    channels: frozenset[str]  # channels with any price
    by_country: frozenset[str]  # channels with a price for some country

    @classmethod
    def read(cls) -> "PriceList":
        rows = {
            (row.channel, row.country): (row.price, row.currency)
            for row in Price.objects.only("channel", "country", "price", "currency")
        }
        return cls(
            rows=rows,
            channels=frozenset(channel for channel, _ in rows),
            by_country=frozenset(channel for channel, country in rows if country != ANY_COUNTRY),
        )


# (when it was read on the monotonic clock, the list): replaced whole, so threads never see half a list.
_cached: tuple[float, PriceList] | None = None


def price_list() -> PriceList:
    """Every price, from this process's copy while it is fresh."""
    global _cached
    cached = _cached
    if cached is None or time.monotonic() - cached[0] > settings.PRICE_CACHE_SECONDS:
        cached = _cached = (time.monotonic(), PriceList.read())
    return cached[1]


def forget_prices() -> None:
    """Read the price list again at the next estimate (this process; others within PRICE_CACHE_SECONDS)."""
    global _cached
    _cached = None


@receiver([post_save, post_delete], sender=Price, dispatch_uid="guard.forget_prices")
def _price_changed(**kwargs: object) -> None:
    forget_prices()
