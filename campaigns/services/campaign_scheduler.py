"""The campaign scheduler's tick, run by every dispatcher (`manage.py run_dispatcher`) about once a second.

Several dispatchers may run it at once. Each step is a conditional UPDATE that one of them wins: a recurring
campaign's occurrence is fired by whoever moves its `next_run_at` on (and a unique constraint on
(parent, occurrence_at) backs that up), a campaign is started or completed once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from deliveries.models import Message, Status
from deliveries.state import transition

from ..models import Campaign, CampaignStep
from ..scheduling import cron_next, zone_named
from .campaign_lifecycle import LIVE, CampaignStateError, campaign_enqueue_fan_out, campaign_launch
from .completion import campaigns_complete_finished

logger = logging.getLogger(__name__)

# A fan-out that has not written a chunk for this long is presumed lost (its job vanished with Redis, or its
# worker died) and is queued again; it carries on from its cursor.
FAN_OUT_STALL = timedelta(seconds=60)


@dataclass
class TickReport:
    fired: int = 0
    started: int = 0
    completed: int = 0
    restarted: int = 0
    held: int = 0


def campaigns_tick() -> TickReport:
    """One pass of every scheduler duty. Cheap when there is nothing to do (a few indexed queries).

    A duty that fails is logged and the others still run: the dispatcher calling this must go on queueing
    due messages whatever one campaign's trouble is.
    """
    now = timezone.now()
    duties: dict[str, Callable[[], int]] = {
        "fired": lambda: campaigns_fire_due_occurrences(now=now),
        "started": lambda: campaigns_start_due(now=now),
        "completed": campaigns_complete_finished,
        "restarted": lambda: campaigns_restart_stalled_fan_outs(now=now),
        "held": campaigns_hold_stragglers,
    }
    report = TickReport()
    for name, duty in duties.items():
        try:
            setattr(report, name, duty())
        except Exception:
            logger.exception("Campaign scheduler: '%s' failed; trying again at the next tick", name)
    return report


def campaigns_fire_due_occurrences(*, now: datetime) -> int:
    """Launch one occurrence of each recurring campaign whose next run is due. Returns how many were fired.

    Occurrences missed while no dispatcher ran are not all replayed: the latest due one fires, once.
    """
    fired = 0
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED, next_run_at__lte=now, parent__isnull=True).exclude(
        recurrence=""
    )
    for parent in due:
        occurrence = cast(datetime, parent.next_run_at)  # never None: next_run_at__lte=now selected the row
        upcoming = cron_next(parent.recurrence, after=max(now, occurrence), zone=zone_named(parent.time_zone))
        try:
            with transaction.atomic():
                won = Campaign.objects.filter(
                    pk=parent.pk, status=Campaign.Status.SCHEDULED, next_run_at=occurrence
                ).update(next_run_at=upcoming, updated_at=now)
                if not won:
                    continue  # another dispatcher fired it
                child = _occurrence_of(parent, occurrence)
        except IntegrityError:
            logger.warning("Occurrence %s of campaign %s was already fired", occurrence, parent.pk)
            continue
        try:
            campaign_launch(campaign=child, by="the scheduler")
        except (ValidationError, CampaignStateError) as error:
            # The occurrence stays a draft, visible in the admin with what stops it.
            logger.error("Occurrence %s of campaign %s cannot be launched: %s", occurrence, parent.pk, error)
            continue
        fired += 1
        logger.info("Fired occurrence %s of recurring campaign %s as campaign %s", occurrence, parent.pk, child.pk)
    return fired


def _occurrence_of(parent: Campaign, occurrence: datetime) -> Campaign:
    local = occurrence.astimezone(zone_named(parent.time_zone))
    child = Campaign.objects.create(
        name=f"{parent.name} — {local:%Y-%m-%d %H:%M}",
        template=parent.template,
        contact_list=parent.contact_list,
        segment=parent.segment,
        schedule=Campaign.Schedule.NOW,
        time_zone=parent.time_zone,
        priority=parent.priority,
        rate_limit_per_minute=parent.rate_limit_per_minute,
        quiet_hours_start=parent.quiet_hours_start,
        quiet_hours_end=parent.quiet_hours_end,
        spend_cap=parent.spend_cap,  # each occurrence is held to the cap on its own
        parent=parent,
        occurrence_at=occurrence,
        created_by=parent.created_by,
    )
    # Each occurrence sends the whole sequence: the follow-up steps come along.
    CampaignStep.objects.bulk_create(
        CampaignStep(
            campaign=child,
            position=step.position,
            template_id=step.template_id,
            condition=step.condition,
            delay=step.delay,
            window=step.window,
        )
        for step in parent.steps.all()
    )
    return child


def campaigns_start_due(*, now: datetime) -> int:
    """Scheduled campaigns whose first message is due are now running."""
    return (
        Campaign.objects.filter(status=Campaign.Status.SCHEDULED, recurrence="", starts_at__lte=now)
        .exclude(launched_at=None)
        .update(status=Campaign.Status.RUNNING, updated_at=now)
    )


def campaigns_restart_stalled_fan_outs(*, now: datetime) -> int:
    stalled = (
        Campaign.objects.filter(status__in=LIVE, recurrence="", fanout_done=False)
        .exclude(launched_at=None)
        .filter(launched_at__lt=now - FAN_OUT_STALL)
        .exclude(fanout_heartbeat__gte=now - FAN_OUT_STALL)
        .values_list("pk", flat=True)
    )
    restarted = 0
    for pk in stalled:
        # Only one dispatcher queues it again: whoever moves the heartbeat on.
        if (
            Campaign.objects.filter(pk=pk, fanout_done=False)
            .exclude(fanout_heartbeat__gte=now - FAN_OUT_STALL)
            .update(fanout_heartbeat=now)
        ):
            logger.warning("Fan-out of campaign %s made no progress for %s; queueing it again", pk, FAN_OUT_STALL)
            campaign_enqueue_fan_out(campaign_id=pk)
            restarted += 1
    return restarted


def campaigns_hold_stragglers() -> int:
    """Messages of a paused campaign that became scheduled or queued after the pause (a send that failed
    for a moment and was rescheduled for a retry) are held too; those of a cancelled campaign are cancelled."""
    held = 0
    for campaign_status, to_status in (
        (Campaign.Status.PAUSED, Status.PAUSED),
        (Campaign.Status.CANCELLED, Status.CANCELLED),
    ):
        ids = list(
            Message.objects.filter(
                campaign__status=campaign_status, status__in=[Status.SCHEDULED, Status.QUEUED]
            ).values_list("pk", flat=True)[:5000]
        )
        held += len(
            transition(
                ids,
                to_status=to_status,
                from_statuses=[Status.SCHEDULED, Status.QUEUED],
                detail=f"Its campaign is {campaign_status}.",
            )
        )
    return held
