"""A campaign's own spend cap at send time. The launch refuses an estimate over `Campaign.spend_cap`; this catches
what the estimate could not (follow-up steps, a price list changed after launch, recipients the estimate could not
price): once what the campaign has sent reaches its cap, the worker holds the rest (`held:cap`, with the reason),
as it does for the SpendCap table's caps. Registered with deliveries' cap sources when the app is ready.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from deliveries.models import Message
from deliveries.services.spend_caps import CostedRow
from guard.services.spend_caps import TOTAL, Cap

from ..models import Campaign
from .campaign_cost import price_list_currency

# Campaigns whose messages may still be sent: a capped one among them makes the source active.
SENDING_STATUSES = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)


class CampaignCapSource:
    """Each campaign's cap over its whole life (period TOTAL), in the price list's currency."""

    def __init__(self) -> None:
        self._checked: tuple[float, bool] | None = None

    def active(self) -> bool:
        """Whether a campaign with a cap may still send: asked once per SPEND_CAP_CACHE_SECONDS, so a worker
        without capped campaigns asks nothing more per wave."""
        checked = self._checked
        if checked is None or time.monotonic() - checked[0] > settings.SPEND_CAP_CACHE_SECONDS:
            capped = Campaign.objects.filter(status__in=SENDING_STATUSES, spend_cap__isnull=False).exists()
            checked = self._checked = (time.monotonic(), capped)
        return checked[1]

    def forget(self) -> None:
        self._checked = None

    def caps_for(self, rows: Sequence[CostedRow]) -> Mapping[int, Sequence[Cap]]:
        campaign_ids = {row.campaign_id for row in rows if row.campaign_id is not None}
        if not campaign_ids:
            return {}
        currency = price_list_currency()
        capped = Campaign.objects.filter(pk__in=campaign_ids, spend_cap__isnull=False)
        caps = {
            pk: campaign_cap(pk, name=name, amount=amount, currency=currency)
            for pk, name, amount in capped.values_list("pk", "name", "spend_cap")
            if amount is not None
        }
        return {row.pk: (caps[row.campaign_id],) for row in rows if row.campaign_id in caps}


def campaign_cap(campaign_id: int, *, name: str, amount: Decimal, currency: str) -> Cap:
    return Cap(
        key=f"campaign:{campaign_id}",
        label=f"the cap of campaign “{name}”",
        period=TOTAL,
        amount=amount,
        currency=currency,
        scope="campaign",
        scope_value=str(campaign_id),
    )


campaign_cap_source = CampaignCapSource()


def paused_campaign_messages(message_ids: list[int]) -> set[int]:
    """Those of these messages whose campaign is paused: released from a hold, they wait for its resumption."""
    return set(
        Message.objects.filter(pk__in=message_ids, campaign__status=Campaign.Status.PAUSED).values_list("pk", flat=True)
    )


@receiver(post_save, sender=Campaign, dispatch_uid="campaigns.forget_capped_campaigns")
def _campaign_saved(**kwargs: object) -> None:
    # In this process at once (a launch, a cap set); in the others within SPEND_CAP_CACHE_SECONDS.
    campaign_cap_source.forget()
