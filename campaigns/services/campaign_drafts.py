"""Drafts: a campaign created and changed before launch, with only the fields a person may set."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Campaign
from .campaign_checks import campaign_format_problems, campaign_normalize
from .campaign_lifecycle import CampaignStateError

# What may be set on a campaign before launch; the rest is the lifecycle's to write.
EDITABLE_FIELDS = (
    "name",
    "template",
    "contact_list",
    "segment",
    "schedule",
    "send_at",
    "local_time",
    "local_date",
    "time_zone",
    "priority",
    "rate_limit_per_minute",
    "quiet_hours_start",
    "quiet_hours_end",
    "recurrence",
    "spend_cap",
)


@transaction.atomic
def campaign_create(*, created_by: User | None = None, **fields: Any) -> Campaign:
    """A draft campaign. It may be incomplete (campaign_launch says what is missing), but what it has must be
    usable: a known time zone, a valid cron expression... Raises ValidationError."""
    campaign = Campaign(created_by=created_by, **{name: fields[name] for name in EDITABLE_FIELDS if name in fields})
    _draft_clean(campaign)
    campaign.save()
    return campaign


def _draft_clean(campaign: Campaign) -> None:
    campaign_normalize(campaign)
    campaign.full_clean()
    if problems := campaign_format_problems(campaign):
        raise ValidationError(problems)


@transaction.atomic
def campaign_update(*, campaign: Campaign, **fields: Any) -> Campaign:
    """Change a draft. Raises CampaignStateError once launched (it would change what was already sent)."""
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignStateError(
            f"Campaign '{campaign}' is {campaign.get_status_display().lower()}: only a draft can be changed."
        )
    for name in EDITABLE_FIELDS:
        if name in fields:
            setattr(campaign, name, fields[name])
    _draft_clean(campaign)
    campaign.save()
    return campaign
