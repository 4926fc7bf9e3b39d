"""The providers' actual prices: what Twilio billed for each sent SMS and WhatsApp message, asked after the fact.

Twilio puts a message's `price` on its resource only once the carrier has reported it, minutes after delivery, and
sends it in no callback; so `price_tick`, one of the dispatchers' DISPATCHER_PERIODIC_TASKS, asks for it: each
minute, up to ACTUAL_PRICE_FETCH_PER_MINUTE messages sent at least ACTUAL_PRICE_FETCH_AFTER_MINUTES ago and at most
ACTUAL_PRICE_FETCH_MAX_DAYS, through the channel's backend (`fetch_price`). A message still without a price is asked
again later, each wait twice the one before, and given up on after PRICE_CHECKS_MAX asks. One dispatcher a minute
does it (a key in the shared cache), so several dispatchers never add up to more than the bound.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q
from django.utils import timezone

from content.models import Channel

from ..backends import get_backend
from ..backends.base import BaseBackend
from ..exceptions import BackendConfigurationError, PermanentDeliveryError, TransientDeliveryError
from ..models import PRICE_CHECKS_MAX, Message

logger = logging.getLogger("deliveries.dispatcher")

# The channels whose provider prices each message after the fact (email and Messenger cost their unit price).
PRICED_CHANNELS = (Channel.SMS, Channel.WHATSAPP)
# Whoever adds this key first asks for the minute's prices; it expires with the minute.
TURN_KEY = "deliveries:price-tick"
TURN_SECONDS = 60
# A pass stops asking after this long, so it never overlaps the next dispatcher's turn.
PASS_BUDGET_SECONDS = 50.0
PRICE_PLACES = Decimal("0.000001")


@dataclass
class PriceFetchReport:
    """What one pass did: prices stored, messages asked that had none yet, messages given up on."""

    priced: int = 0
    not_yet: int = 0
    gave_up: int = 0
    # Why the pass stopped before its bound (the provider throttling or unreachable), or "".
    stopped: str = ""

    @property
    def asked(self) -> int:
        return self.priced + self.not_yet + self.gave_up


def price_tick() -> None:
    """The dispatchers' periodic task: one bounded pass a minute, by whichever dispatcher takes the turn."""
    limit = settings.ACTUAL_PRICE_FETCH_PER_MINUTE
    if limit <= 0 or not cache.add(TURN_KEY, 1, timeout=TURN_SECONDS):
        return
    report = message_prices_fetch(limit=limit)
    if report.asked:
        logger.info(
            "Provider prices: %s stored, %s not reported yet, %s given up on%s",
            report.priced,
            report.not_yet,
            report.gave_up,
            f"; stopped early: {report.stopped}" if report.stopped else "",
        )


def message_prices_fetch(*, limit: int, now: datetime | None = None) -> PriceFetchReport:
    """Ask the providers for the prices of up to `limit` sent messages that have none, store those they give, and
    count an ask against each of the others. Stops at the first transient error (throttling, an outage): the
    rest wait for the next pass, their asks not counted."""
    now = now or timezone.now()
    report = PriceFetchReport()
    started = time.monotonic()
    for channel in PRICED_CHANNELS:
        backend = _pricing_backend(channel) if report.asked < limit else None
        if backend is None:
            continue
        candidates = price_candidates(
            channel=channel, provider=backend.provider_name, now=now, limit=limit - report.asked
        )
        for message in candidates:
            if time.monotonic() - started > PASS_BUDGET_SECONDS:
                return report
            try:
                price, currency = backend.fetch_price(message.provider_message_id)
            except TransientDeliveryError as error:
                report.stopped = str(error)
                return report
            except PermanentDeliveryError as error:  # the provider no longer knows the message (deleted, say)
                logger.warning("No price for message %s: %s", message.pk, error)
                price, currency = None, ""
            if price is not None and currency:
                message_price_store(message_id=message.pk, price=price, currency=currency)
                report.priced += 1
            elif message_price_not_yet(message_id=message.pk):
                report.gave_up += 1
            else:
                report.not_yet += 1
    return report


def price_candidates(*, channel: str, provider: str, now: datetime, limit: int) -> list[Message]:
    """The messages of one channel sent through `provider` whose price is due to be asked for, the least asked and
    then the longest sent first. A message asked k times waits ACTUAL_PRICE_FETCH_AFTER_MINUTES × 2^k after its
    send before the next ask (10, 20, 40, 80, 160 minutes by default): Twilio may take a while to fill the price."""
    after = timedelta(minutes=settings.ACTUAL_PRICE_FETCH_AFTER_MINUTES)
    due = Q()
    for checks in range(PRICE_CHECKS_MAX):
        due |= Q(price_checks=checks, sent_at__lte=now - after * 2**checks)
    rows = (
        Message.objects.filter(
            due,
            # The conditions of the message_price_unknown index, which these rows are read from.
            actual_cost__isnull=True,
            price_checks__lt=PRICE_CHECKS_MAX,
            sent_at__isnull=False,
            channel__in=[channel],
            sent_at__gte=now - timedelta(days=settings.ACTUAL_PRICE_FETCH_MAX_DAYS),
            provider=provider,
        )
        .exclude(provider_message_id="")
        .order_by("price_checks", "sent_at", "id")
        .only("id", "provider_message_id", "price_checks")
    )
    return list(rows[:limit])


def message_price_store(*, message_id: int, price: Decimal, currency: str) -> bool:
    """Record what the provider billed for a message (a positive amount, to the micro-unit); False if it already
    had a price."""
    stored = Message.objects.filter(pk=message_id, actual_cost__isnull=True).update(
        actual_cost=abs(price).quantize(PRICE_PLACES),
        actual_cost_currency=currency.upper()[:3],
        price_checks=F("price_checks") + 1,
    )
    return bool(stored)


def message_price_not_yet(*, message_id: int) -> bool:
    """Count an ask that brought no price; True when that was the last one allowed (the message is given up on)."""
    Message.objects.filter(pk=message_id, actual_cost__isnull=True).update(price_checks=F("price_checks") + 1)
    checks = Message.objects.filter(pk=message_id).values_list("price_checks", flat=True).first()
    return checks is not None and checks >= PRICE_CHECKS_MAX


def _pricing_backend(channel: str) -> BaseBackend | None:
    """The channel's backend if its provider reports prices, else None (console, locmem, or not configured)."""
    try:
        backend = get_backend(channel)
    except BackendConfigurationError as error:
        logger.warning("Provider prices for %s not asked: %s", channel, error)
        return None
    return backend if backend.reports_prices else None
