"""The campaign lifecycle: draft -> scheduled -> running -> paused -> completed / cancelled.

Every status change here is a conditional UPDATE on the campaign row (`WHERE status IN (...)`), so two people
pressing "pause" and "resume" at once, or the scheduler racing an admin, cannot leave it half-done. Messages
change status only through deliveries.state.transition().

Pausing holds the campaign's scheduled and queued messages (status `paused`): workers only claim `queued`
rows, so nothing more is sent. Resuming puts them back to `scheduled` (the dispatcher queues them when due);
messages already sent are never touched, and the fan-out (campaigns.services.fan_out) resumes from its cursor,
so nobody gets two. The fan-out and a pause both take the campaign row first (a conditional UPDATE) in the same
transaction as their message writes: a pause therefore waits for a fan-out chunk being written, then holds it too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, cast

import django_rq
from django.db import OperationalError, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from deliveries.models import Message, Status
from deliveries.state import transition

from ..models import Campaign
from ..scheduling import cron_next, zone_named
from ..selectors import campaign_audience, campaign_recipients
from .campaign_checks import campaign_clean
from .campaign_cost import campaign_cost_estimate

logger = logging.getLogger(__name__)

FAN_OUT_JOB = "campaigns.jobs.campaign_fan_out"
TRANSITION_SLICE = 5000
# A campaign moves on only from these statuses (the rest are final, or need a person).
LIVE = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING)


class CampaignStateError(ValueError):
    """The action does not apply to the campaign in its current status; the message says why."""


def _move(campaign: Campaign, *, from_statuses: Iterable[str], **values: Any) -> bool:
    """Conditional UPDATE of the campaign row; refreshes `campaign` and says whether it moved."""
    moved = Campaign.objects.filter(pk=campaign.pk, status__in=list(from_statuses)).update(
        updated_at=timezone.now(), **values
    )
    campaign.refresh_from_db()
    return bool(moved)


def campaign_launch(*, campaign: Campaign, by: str = "") -> Campaign:
    """Start a draft: fan it out now (sends then follow its schedule), or, if it recurs, arm its next occurrence.

    Raises ValidationError when the campaign is not ready, CampaignStateError when it is not a draft.
    """
    # Estimated before the launch (the cap is checked against it) and kept in the campaign as what it was then.
    estimate = campaign_cost_estimate(campaign=campaign) if not campaign.recurrence else None
    campaign_clean(campaign, estimate=estimate)
    now = timezone.now()
    if campaign.recurrence:
        next_run = cron_next(campaign.recurrence, after=now, zone=zone_named(campaign.time_zone))
        if not _move(
            campaign,
            from_statuses=[Campaign.Status.DRAFT],
            status=Campaign.Status.SCHEDULED,
            launched_at=now,
            next_run_at=next_run,
            time_zone=campaign.time_zone,
            recurrence=campaign.recurrence,
        ):
            raise CampaignStateError(f"Campaign '{campaign}' is {campaign.get_status_display().lower()}, not a draft.")
        logger.info("Recurring campaign %s armed by %s; next occurrence %s", campaign.pk, by or "system", next_run)
        return campaign

    starts_at = None  # a local-time campaign learns its first send time from the fan-out
    if campaign.schedule == Campaign.Schedule.NOW:
        starts_at = now
    elif campaign.schedule == Campaign.Schedule.AT:
        assert campaign.send_at is not None  # campaign_clean refuses it otherwise
        starts_at = max(campaign.send_at, now)
    assert campaign.template is not None  # as above
    channel = campaign.template.channel
    audience = campaign_audience(campaign=campaign).count()
    eligible = campaign_recipients(campaign=campaign, channel=channel).count()
    with transaction.atomic():
        if not _move(
            campaign,
            from_statuses=[Campaign.Status.DRAFT],
            status=Campaign.Status.RUNNING if starts_at == now else Campaign.Status.SCHEDULED,
            launched_at=now,
            starts_at=starts_at,
            excluded=audience - eligible,
            time_zone=campaign.time_zone,
            # `recipients`: how many the fan-out will create, so the campaign page can say how far it has got.
            fanout_state={
                "launched_at": now.isoformat(),
                "recipients": eligible,
                "estimated_cost": estimate.as_json() if estimate is not None else None,
            },
        ):
            raise CampaignStateError(f"Campaign '{campaign}' is {campaign.get_status_display().lower()}, not a draft.")
        transaction.on_commit(lambda: campaign_enqueue_fan_out(campaign_id=campaign.pk))
    logger.info("Campaign %s launched by %s for %s recipient(s)", campaign.pk, by or "system", eligible)
    return campaign


def campaign_enqueue_fan_out(*, campaign_id: int) -> None:
    """Queue the fan-out job (on the high queue, so it never waits behind the sends it creates)."""
    django_rq.get_queue("high").enqueue(FAN_OUT_JOB, campaign_id, job_id=f"campaign-fan-out-{campaign_id}")


Params = ParamSpec("Params")
Result = TypeVar("Result")


def _retrying(action: Callable[Params, Result]) -> Callable[Params, Result]:
    """Run a lifecycle action again if the database broke a deadlock by rolling it back: a pause can meet the
    dispatcher or a worker moving the same messages, and whichever the database picks simply tries again."""

    @functools.wraps(action)
    def run(*args: Params.args, **kwargs: Params.kwargs) -> Result:  # the actions take keyword arguments only
        for attempt in range(3):
            try:
                return action(*args, **kwargs)
            except OperationalError:
                if attempt == 2 or transaction.get_connection().in_atomic_block:
                    raise
                logger.warning("%s met a concurrent update; trying again", action.__name__)
                cast(Campaign, kwargs["campaign"]).refresh_from_db()  # every lifecycle action takes `campaign`
        raise AssertionError("unreachable: the last attempt returns or raises")

    return run


@_retrying
def campaign_pause(*, campaign: Campaign, by: str = "") -> int:
    """Stop sending: hold every scheduled or queued message of the campaign. Returns how many were held.

    Messages a worker is sending at this instant finish; nothing else goes out. Raises CampaignStateError.
    """
    now = timezone.now()
    with transaction.atomic():
        if not _move(campaign, from_statuses=LIVE, status=Campaign.Status.PAUSED, paused_at=now):
            raise CampaignStateError(
                f"Campaign '{campaign}' is {campaign.get_status_display().lower()}; "
                "only a scheduled or running campaign can be paused."
            )
        held = _hold_messages(campaign, detail=f"Campaign paused by {by}." if by else "Campaign paused.")
    logger.info("Campaign %s paused by %s: %s message(s) held", campaign.pk, by or "system", held)
    return held


def _hold_messages(campaign: Campaign, *, detail: str) -> int:
    held = 0
    # Queued first: those are what workers are about to claim. Then scheduled, then queued again for any row
    # the dispatcher queued in between (scheduled -> queued only goes one way, so nothing slips through).
    for status in (Status.QUEUED, Status.SCHEDULED, Status.QUEUED):
        # Earliest send time first: the rows the dispatcher is about to queue are taken before it gets to them.
        rows = Message.objects.filter(campaign=campaign, status=status).order_by("send_at", "pk")
        ids = list(rows.values_list("pk", flat=True))
        held += _transition_in_slices(ids, to_status=Status.PAUSED, from_statuses=[status], detail=detail)
    return held


def _transition_in_slices(ids: list[int], **transition_options: Any) -> int:
    """transition() over many ids a slice at a time, so its timeline events never all sit in memory at once."""
    moved = 0
    for start in range(0, len(ids), TRANSITION_SLICE):
        moved += len(transition(ids[start : start + TRANSITION_SLICE], **transition_options))
    return moved


@_retrying
def campaign_resume(*, campaign: Campaign, by: str = "") -> int:
    """Carry on after a pause: held messages go back to `scheduled` (due ones are queued at once by the
    dispatcher) and an unfinished fan-out continues. Returns how many messages were released.

    Messages keep their send time, so a local-time message still goes at 09:00 its time; with a rate limit
    the pacing is shifted by the length of the pause instead, so the limit holds after resuming.
    """
    now = timezone.now()
    with transaction.atomic():
        campaign.refresh_from_db()  # the pacing state and pause time as stored, not as the caller last read them
        paused_at = campaign.paused_at or now
        shift = now - paused_at if campaign.rate_limit_per_minute else timedelta(0)
        state = {**campaign.fanout_state, "shift": campaign.fanout_state.get("shift", 0) + shift.total_seconds()}
        starts_at = campaign.starts_at
        waiting = campaign.recurrence or (starts_at and starts_at > now)
        target = Campaign.Status.SCHEDULED if waiting else Campaign.Status.RUNNING
        if not _move(
            campaign, from_statuses=[Campaign.Status.PAUSED], status=target, paused_at=None, fanout_state=state
        ):
            raise CampaignStateError(f"Campaign '{campaign}' is {campaign.get_status_display().lower()}, not paused.")
        if campaign.recurrence:
            # A recurring campaign's next occurrence comes round again from now on.
            next_run = cron_next(campaign.recurrence, after=now, zone=zone_named(campaign.time_zone))
            Campaign.objects.filter(pk=campaign.pk).update(next_run_at=next_run)
            return 0
        ids = list(Message.objects.filter(campaign=campaign, status=Status.PAUSED).values_list("pk", flat=True))
        now_value = Value(now, output_field=DateTimeField())
        send_at = Coalesce(F("send_at") + shift, now_value) if shift else Coalesce(F("send_at"), now_value)
        released = _transition_in_slices(
            ids,
            to_status=Status.SCHEDULED,
            from_statuses=[Status.PAUSED],
            fields={"send_at": send_at},
            detail=f"Campaign resumed by {by}." if by else "Campaign resumed.",
        )
        if not campaign.fanout_done:
            transaction.on_commit(lambda: campaign_enqueue_fan_out(campaign_id=campaign.pk))
    logger.info("Campaign %s resumed by %s: %s message(s) released", campaign.pk, by or "system", released)
    return released


@_retrying
def campaign_cancel(*, campaign: Campaign, by: str = "") -> int:
    """Stop for good: every message not yet handed to a provider is cancelled. Returns how many.

    A recurring campaign stops recurring; occurrences already running carry on (cancel them separately).
    """
    now = timezone.now()
    with transaction.atomic():
        if not _move(
            campaign,
            from_statuses=[Campaign.Status.DRAFT, *LIVE, Campaign.Status.PAUSED],
            status=Campaign.Status.CANCELLED,
            cancelled_at=now,
            next_run_at=None,
        ):
            raise CampaignStateError(f"Campaign '{campaign}' is already {campaign.get_status_display().lower()}.")
        cancelled = _cancel_messages(campaign, detail=f"Campaign cancelled by {by}." if by else "Campaign cancelled.")
    logger.info("Campaign %s cancelled by %s: %s message(s) cancelled", campaign.pk, by or "system", cancelled)
    return cancelled


def _cancel_messages(campaign: Campaign, *, detail: str) -> int:
    # Waiting ones too: the follow-up steps of a multi-step campaign, not yet released by their previous step.
    pending = [Status.WAITING, Status.SCHEDULED, Status.QUEUED, Status.PAUSED, Status.HELD]
    ids = list(Message.objects.filter(campaign=campaign, status__in=pending).values_list("pk", flat=True))
    return _transition_in_slices(ids, to_status=Status.CANCELLED, from_statuses=pending, detail=detail)
