"""The campaign lifecycle: draft -> scheduled -> running -> paused -> completed / cancelled, and the fan-out.

Every status change here is a conditional UPDATE on the campaign row (`WHERE status IN (...)`), so two people
pressing "pause" and "resume" at once, or the scheduler racing an admin, cannot leave it half-done. Messages
change status only through deliveries.state.transition().

Pausing holds the campaign's scheduled and queued messages (status `paused`): workers only claim `queued`
rows, so nothing more is sent. Resuming puts them back to `scheduled` (the dispatcher queues them when due);
messages already sent are never touched, and the fan-out resumes from its cursor, so nobody gets two.

The fan-out and a pause both take the campaign row first (a conditional UPDATE) in the same transaction as
their message writes: a pause therefore waits for a fan-out chunk being written, and then holds it too.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import zoneinfo
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import django_rq
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.db.models import DateTimeField, F, Max, Value
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from deliveries.db.features import parallel_writers_possible
from deliveries.models import Message, Status
from deliveries.services.bulk import RenderFailure, messages_create_many
from deliveries.services.dependencies import DEFAULT_WINDOW, ENGAGEMENT_CHANNELS, ENGAGEMENT_CONDITIONS
from deliveries.services.messages import SUPPORTED_CHANNELS, MessageRequest
from deliveries.state import transition

from ..locales import normalize_time_zone
from ..models import Campaign
from ..scheduling import (
    after_quiet_hours,
    cron_is_valid,
    cron_next,
    next_local_time,
    paced,
    zone_named,
)
from ..selectors import ADDRESS_FIELDS, campaign_audience, campaign_recipients, campaign_recipients_between
from .forked import FORK, forking_possible, work_in_processes
from .templates import TemplateRenderError, template_render_for_contact

logger = logging.getLogger(__name__)

FAN_OUT_JOB = "campaigns.jobs.campaign_fan_out"
FAN_OUT_CHUNK = 2000
# Not template variables, never read by the fan-out: not loaded (parsing two timestamps a contact, through
# Django's time-zone loader, was a third of reading a chunk of contacts).
UNUSED_CONTACT_FIELDS = ("created_at", "updated_at")
TRANSITION_SLICE = 5000
# A campaign moves on only from these statuses (the rest are final, or need a person).
LIVE = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING)


class CampaignStateError(ValueError):
    """The action does not apply to the campaign in its current status; the message says why."""


# --- Checking -----------------------------------------------------------------------------------------------


def campaign_problems(campaign: Campaign) -> dict[str, list[str]]:
    """What stops the campaign from being launched, by field (empty when it is ready)."""
    problems = campaign_format_problems(campaign)

    def problem(field: str, text: str) -> None:
        problems.setdefault(field, []).append(text)

    if campaign.template_id is None:
        problem("template", "Choose the template to send.")
    elif campaign.template.channel not in SUPPORTED_CHANNELS:
        problem("template", f"Tidings cannot send {campaign.template.get_channel_display()} messages yet.")
    if campaign.pk is not None:
        for text in campaign_step_problems(campaign):
            problem("steps", text)
    if bool(campaign.contact_list_id) == bool(campaign.segment_id):
        problem("contact_list", "Choose the audience: a contact list or a segment (one of them).")
    if campaign.schedule == Campaign.Schedule.AT and campaign.send_at is None:
        problem("send_at", "Give the time to send at.")
    if campaign.schedule == Campaign.Schedule.LOCAL_TIME and campaign.local_time is None:
        problem("local_time", "Give the local time of day to send at, like 09:00.")
    return problems


def campaign_step_problems(campaign: Campaign) -> list[str]:
    """What is wrong with the campaign's follow-up steps (empty when they are fine, or when it has none)."""
    problems = []
    previous = campaign.template
    for step in campaign.steps.select_related("template"):
        name = f"Step {step.position}"
        template = step.template
        if template.channel not in SUPPORTED_CHANNELS:
            problems.append(f"{name}: Tidings cannot send {template.get_channel_display()} messages yet.")
        if step.condition in ENGAGEMENT_CONDITIONS and (
            previous is None or previous.channel not in ENGAGEMENT_CHANNELS
        ):
            before = f"step {step.position - 1}" if step.position > 1 else "the campaign's own message"
            channel = previous.get_channel_display() if previous else "not chosen"
            problems.append(
                f"{name}: opens and clicks are only reported for email, and {before} is {channel}; "
                "use the sent or delivered condition."
            )
        if step.window is not None and step.condition not in ENGAGEMENT_CONDITIONS:
            problems.append(f"{name}: a window applies to the not opened and not clicked conditions only.")
        elif step.window is not None and step.window <= timedelta(0):
            problems.append(f"{name}: the window must be longer than zero.")
        if step.delay < timedelta(0):
            problems.append(f"{name}: the delay cannot be negative.")
        previous = template
    positions = list(campaign.steps.values_list("position", flat=True))
    if positions != list(range(1, len(positions) + 1)):
        problems.append(f"Steps are numbered {', '.join(map(str, positions))}; number them 1, 2, 3… with no gaps.")
    return problems


def campaign_format_problems(campaign: Campaign) -> dict[str, list[str]]:
    """What is wrong with the values given (as opposed to missing): refused even in a draft."""
    problems: dict[str, list[str]] = {}

    def problem(field: str, text: str) -> None:
        problems.setdefault(field, []).append(text)

    if (campaign.quiet_hours_start is None) != (campaign.quiet_hours_end is None):
        problem("quiet_hours_end", "Give both ends of the quiet hours, or neither.")
    elif campaign.quiet_hours_start is not None and campaign.quiet_hours_start == campaign.quiet_hours_end:
        problem("quiet_hours_end", "The quiet hours start and end at the same time.")
    if campaign.time_zone:
        try:
            normalize_time_zone(campaign.time_zone)
        except ValidationError as error:
            problem("time_zone", error.messages[0])
    if campaign.rate_limit_per_minute == 0:
        problem("rate_limit_per_minute", "A rate limit of 0 would send nothing; leave it empty for no limit.")
    if campaign.recurrence:
        if not cron_is_valid(campaign.recurrence):
            problem(
                "recurrence",
                f"'{campaign.recurrence}' is not a cron expression (minute hour day month weekday, "
                "like '0 9 * * MON').",
            )
        if campaign.schedule != Campaign.Schedule.NOW:
            problem("schedule", "A recurring campaign sends at its cron times: set the schedule to 'now'.")
        if campaign.parent_id:
            problem("recurrence", "An occurrence of a recurring campaign cannot recur itself.")
    return problems


def campaign_normalize(campaign: Campaign) -> None:
    """Spell the time zone canonically and the cron expression with single spaces (in place)."""
    if campaign.time_zone:
        with contextlib.suppress(ValidationError):  # an unknown zone is reported by campaign_format_problems
            campaign.time_zone = normalize_time_zone(campaign.time_zone)
    campaign.recurrence = " ".join(campaign.recurrence.split())


def campaign_clean(campaign: Campaign) -> None:
    """Normalise what can be normalised; raise ValidationError(field -> messages) for what stops a launch."""
    campaign_normalize(campaign)
    if problems := campaign_problems(campaign):
        raise ValidationError(problems)


# --- Lifecycle ----------------------------------------------------------------------------------------------


def _move(campaign: Campaign, *, from_statuses, **values) -> bool:
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
    campaign_clean(campaign)
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
        starts_at = max(campaign.send_at, now)
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
            fanout_state={"launched_at": now.isoformat()},
        ):
            raise CampaignStateError(f"Campaign '{campaign}' is {campaign.get_status_display().lower()}, not a draft.")
        transaction.on_commit(lambda: campaign_enqueue_fan_out(campaign_id=campaign.pk))
    logger.info("Campaign %s launched by %s for %s recipient(s)", campaign.pk, by or "system", eligible)
    return campaign


def campaign_enqueue_fan_out(*, campaign_id: int) -> None:
    """Queue the fan-out job (on the high queue, so it never waits behind the sends it creates)."""
    django_rq.get_queue("high").enqueue(FAN_OUT_JOB, campaign_id, job_id=f"campaign-fan-out-{campaign_id}")


def _retrying(action):
    """Run a lifecycle action again if the database broke a deadlock by rolling it back: a pause can meet the
    dispatcher or a worker moving the same messages, and whichever the database picks simply tries again."""

    @functools.wraps(action)
    def run(**kwargs):
        for attempt in range(3):
            try:
                return action(**kwargs)
            except OperationalError:
                if attempt == 2 or transaction.get_connection().in_atomic_block:
                    raise
                logger.warning("%s met a concurrent update; trying again", action.__name__)
                kwargs["campaign"].refresh_from_db()

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


def _transition_in_slices(ids: list[int], **transition_options) -> int:
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
    pending = [Status.WAITING, Status.SCHEDULED, Status.QUEUED, Status.PAUSED]
    ids = list(Message.objects.filter(campaign=campaign, status__in=pending).values_list("pk", flat=True))
    return _transition_in_slices(ids, to_status=Status.CANCELLED, from_statuses=pending, detail=detail)


# --- Fan-out ------------------------------------------------------------------------------------------------


def campaign_fan_out(*, campaign_id: int, chunk_size: int = FAN_OUT_CHUNK, processes: int | None = None) -> int:
    """Expand the campaign's audience into messages, a chunk of contacts at a time (bounded memory: two chunks
    of contacts and their rows), from where the last run stopped. Returns how many messages this call created.

    Stops when the campaign is no longer scheduled or running (paused, cancelled); resuming calls it again.
    Safe to run twice at once: each chunk first moves the campaign's cursor with a conditional UPDATE, so only
    one run writes a given chunk.

    On PostgreSQL, outside a transaction, a writer thread with its own connection stores each chunk while this
    thread reads and renders the next: the database's time (the COPY, the commit) no longer adds to the
    rendering's. The chunks are still claimed and stored one after another, in order. There too, a campaign
    without a rate limit is fanned out by `processes` forked processes (FAN_OUT_PROCESSES), each reading and
    rendering a chunk while the others do theirs; their claims still go in the chunks' order.
    """
    created = 0
    processes = (settings.FAN_OUT_PROCESSES if processes is None else processes) if forking_possible() else 1
    inline = not parallel_writers_possible()
    writer = None if inline else ThreadPoolExecutor(max_workers=1, thread_name_prefix="fan-out-writer")
    try:
        while True:
            made, finished = _fan_out_from_cursor(
                campaign_id, chunk_size=chunk_size, writer=writer, processes=processes
            )
            created += made
            if finished:
                return created
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):
                # A lambda, so that `connection` is looked up in the writer's thread: its own connection.
                writer.submit(lambda: connection.close()).result()
            writer.shutdown()


@dataclass
class _FanOutChunk:
    cursor: int  # the campaign's cursor before this chunk: its claim succeeds only from there
    end: int  # the cursor after it: its last contact
    contacts: list
    items: list
    state: dict
    first_send: datetime  # the earliest send time of its messages: the campaign starts no later
    now: datetime


def _chunk_prepare(campaign: Campaign, contacts: list, *, cursor: int, end: int, state: dict) -> _FanOutChunk:
    """Render the chunk of `contacts` (after `cursor`, up to `end`) and its pacing, carried on in `state`."""
    now = timezone.now()
    items = list(_chunk_items(campaign, contacts, state=state, now=now))
    first_send = min((request.send_at or now for request, _ in items), default=now)
    return _FanOutChunk(cursor, end, contacts, items, copy.deepcopy(state), first_send, now)


def _fan_out_from_cursor(campaign_id: int, *, chunk_size: int, writer, processes: int = 1) -> tuple[int, bool]:
    """Write chunks from the campaign's stored cursor, carrying the cursor and pacing state from one chunk to the
    next. Returns (messages created, finished); not finished when a claim was lost (paused, cancelled, another
    run): the caller reads the campaign again and decides."""
    campaign = Campaign.objects.select_related("template").filter(pk=campaign_id).first()
    if campaign is None or campaign.status not in LIVE or campaign.fanout_done or campaign.recurrence:
        return 0, True
    template = campaign.template
    steps = list(campaign.steps.select_related("template").prefetch_related("template__translations"))
    recipients = functools.partial(campaign_recipients_between, campaign=campaign, channel=template.channel)
    cursor, state = campaign.fanout_cursor, dict(campaign.fanout_state)
    # Pacing carries a count from each chunk to the next, so a paced campaign's chunks are rendered in turn.
    if processes > 1 and not campaign.rate_limit_per_minute:
        return _fan_out_in_processes(campaign, steps, recipients, cursor, state, chunk_size, processes)
    created, in_flight = 0, None

    def stored(future) -> bool:
        nonlocal created
        won, count = future.result()
        created += count
        return won

    while True:
        contacts = list(recipients(after=cursor).order_by("pk").defer(*UNUSED_CONTACT_FIELDS)[:chunk_size])
        if contacts:  # rendered while the writer stores the chunk before
            chunk = _chunk_prepare(campaign, contacts, cursor=cursor, end=contacts[-1].pk, state=state)
        if in_flight is not None and not stored(in_flight):
            return created, False  # paused, cancelled, or another run wrote that chunk: look again
        in_flight = None
        if not contacts:
            _fan_out_finish(campaign, cursor)
            return created, True
        if writer is None:
            won, count = _fan_out_chunk_store(campaign, steps, chunk)
            created += count
            if not won:
                return created, False
        else:
            in_flight = writer.submit(_fan_out_chunk_store, campaign, steps, chunk)
        cursor = contacts[-1].pk


def _fan_out_finish(campaign: Campaign, cursor: int) -> None:
    """Mark the fan-out done, if the campaign's cursor is still where this run left it."""
    now = timezone.now()
    # starts_at: a local-time campaign with nobody to send to has started (and will complete) now.
    Campaign.objects.filter(pk=campaign.pk, fanout_cursor=cursor, status__in=LIVE).update(
        fanout_done=True, fanout_heartbeat=now, starts_at=Coalesce(F("starts_at"), Value(now))
    )


def _fan_out_chunk_store(campaign: Campaign, steps, chunk: _FanOutChunk) -> tuple[bool, int]:
    """Claim the chunk (move the cursor past it) and store its messages, in one transaction. Returns (claimed,
    messages created)."""
    first_send = Value(chunk.first_send, output_field=DateTimeField())
    with transaction.atomic():
        won = Campaign.objects.filter(
            pk=campaign.pk, status__in=LIVE, fanout_cursor=chunk.cursor, fanout_done=False
        ).update(
            fanout_cursor=chunk.end,
            targeted=F("targeted") + len(chunk.items),
            fanout_state=chunk.state,
            fanout_heartbeat=chunk.now,
            starts_at=Least(Coalesce(F("starts_at"), first_send), first_send),
            updated_at=chunk.now,
        )
        if not won:
            return False, 0
        if not chunk.items:
            return True, 0
        stored = messages_create_many(
            items=chunk.items,
            campaign=campaign,
            created_by=campaign.created_by,
            chunk_size=len(chunk.items),
            collect_ids=bool(steps),
        )
        follow_ups = _store_steps(campaign, steps, chunk.contacts, chunk.items, stored.ids) if steps else 0
        if follow_ups:
            Campaign.objects.filter(pk=campaign.pk).update(targeted=F("targeted") + follow_ups)
    return True, len(chunk.items) + follow_ups


def _fan_out_in_processes(campaign, steps, recipients, cursor: int, state: dict, chunk_size: int, processes: int):
    """_fan_out_from_cursor in `processes` forked processes: this one reads the chunks' bounds (contact ids
    only) and hands them out; each process reads its chunk's contacts, renders them, then claims and stores the
    chunk. Claims go in the chunks' order: a process claims its chunk once the chunk before is stored
    (committed: PostgreSQL would not see a claim made before that commit move the cursor), so the reading and
    rendering run in parallel and the cursor moves one chunk after the other, as with one process. A lost claim
    (paused, cancelled, another run) stops the run as in _fan_out_from_cursor: returns (messages created,
    finished)."""
    parent = os.getpid()
    turn = FORK.Condition()
    next_claim = FORK.Value("q", 0, lock=False)  # the index of the chunk whose claim may go next
    stopped = FORK.Value("b", 0, lock=False)  # a claim was lost or a process failed: claim nothing more
    created, end = 0, cursor

    def bounds():
        nonlocal end
        index = 0
        while not stopped.value:
            ids = recipients(after=end).order_by("pk").values_list("pk", flat=True)[:chunk_size]
            last = ids.aggregate(last=Max("pk"))["last"]
            if last is None:
                return
            yield index, end, last
            index, end = index + 1, last

    def stop() -> None:
        stopped.value = 1
        # Not forever: a process killed inside `turn` would hold its lock; the others look every second anyway.
        if turn.acquire(timeout=5):
            turn.notify_all()
            turn.release()

    def fan_out_chunk(bounds_of_chunk) -> int:
        index, start, last = bounds_of_chunk
        contacts = list(recipients(after=start, upto=last).order_by("pk").defer(*UNUSED_CONTACT_FIELDS))
        chunk = _chunk_prepare(campaign, contacts, cursor=start, end=last, state=copy.deepcopy(state))
        with turn:
            while next_claim.value != index and not stopped.value and os.getppid() == parent:
                turn.wait(timeout=1)
            if next_claim.value != index or stopped.value:
                return 0
        try:
            won, count = _fan_out_chunk_store(campaign, steps, chunk)
        except BaseException:
            stop()
            raise
        with turn:
            if won:
                next_claim.value = index + 1
            else:
                stopped.value = 1
            turn.notify_all()
        return count

    def add(count: int) -> None:
        nonlocal created
        created += count

    work_in_processes(bounds(), fan_out_chunk, processes=processes, on_answer=add, on_stop=stop)
    if stopped.value:
        return created, False  # paused, cancelled, or another run wrote a chunk: look again
    _fan_out_finish(campaign, end)
    return created, True


def _store_steps(campaign: Campaign, steps, contacts, items, first_ids: list[int | None]) -> int:
    """Store each follow-up step's message for the chunk's contacts, each depending on the same contact's message
    of the step before (so each contact has a chain of their own). Runs in the transaction that moved the
    fan-out's cursor, so a chunk's steps are stored once, together with its first messages.

    A contact's chain stops at a step they cannot be sent (no consent or address for its channel) or whose
    previous message could not be rendered: nothing would ever release what follows.
    """
    previous_ids = [
        message_id if not isinstance(content, RenderFailure) else None
        for message_id, (_, content) in zip(first_ids, items, strict=True)
    ]
    created = 0
    for step in steps:
        template = step.template
        channel = template.channel
        window = step.window
        if step.condition in ENGAGEMENT_CONDITIONS and window is None:
            window = DEFAULT_WINDOW
        step_items, positions = [], []
        for index, contact in enumerate(contacts):
            parent_id = previous_ids[index]
            address = getattr(contact, ADDRESS_FIELDS[channel])
            if parent_id is None or not address or not getattr(contact, f"{channel}_consent"):
                previous_ids[index] = None
                continue
            request = MessageRequest(
                channel=channel,
                recipient=address,
                template=template,
                priority=campaign.priority,
                metadata={"contact_id": contact.pk, "campaign_step": step.position},
                language=contact.language,
                dependency={
                    "depends_on_id": parent_id,
                    "depends_on_condition": step.condition,
                    "depends_on_delay": step.delay or None,
                    "depends_on_window": window if step.condition in ENGAGEMENT_CONDITIONS else None,
                },
            )
            try:
                content = template_render_for_contact(template=template, contact=contact)
            except TemplateRenderError as error:
                content = RenderFailure(error.reason)
            step_items.append((request, content))
            positions.append(index)
        if not step_items:
            break
        stored = messages_create_many(
            items=step_items,
            campaign=campaign,
            created_by=campaign.created_by,
            chunk_size=len(step_items),
            collect_ids=True,
        )
        created += len(step_items)
        previous_ids = [None] * len(contacts)
        for index, message_id, (_, content) in zip(positions, stored.ids, step_items, strict=True):
            previous_ids[index] = None if isinstance(content, RenderFailure) else message_id
    return created


def _chunk_items(campaign: Campaign, contacts, *, state: dict, now: datetime) -> Iterator[tuple]:
    """(MessageRequest, content or RenderFailure) for each contact; updates `state` (pacing counters)."""
    template = campaign.template
    address_field = "email" if template.channel == "email" else "phone"
    slots = state.setdefault("slots", {})
    shift = timedelta(seconds=state.get("shift", 0))
    launched = datetime.fromisoformat(state["launched_at"]) if "launched_at" in state else now
    for contact in contacts:
        send_at = campaign_send_time(campaign=campaign, contact_time_zone=contact.time_zone, now=launched)
        if campaign.rate_limit_per_minute:
            base = send_at or launched
            position = slots.get(base.isoformat(), 0)
            slots[base.isoformat()] = position + 1
            send_at = paced(base, position=position, per_minute=campaign.rate_limit_per_minute) + shift
        request = MessageRequest(
            channel=template.channel,
            recipient=getattr(contact, address_field),
            template=template,
            priority=campaign.priority,
            send_at=send_at,
            metadata={"contact_id": contact.pk},
            language=contact.language,
        )
        try:
            content = template_render_for_contact(template=template, contact=contact)
        except TemplateRenderError as error:
            content = RenderFailure(error.reason)
        yield request, content


def campaign_send_time(*, campaign: Campaign, contact_time_zone: str, now: datetime) -> datetime | None:
    """When the campaign's message to a contact in `contact_time_zone` goes out (None: straight away).

    The campaign's own time zone stands in for contacts without one. Quiet hours, in the contact's time,
    push a send time that falls inside them to their end.
    """
    try:
        zone = zone_named(contact_time_zone or campaign.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zone_named(campaign.time_zone)  # a contact stored without the contact services' checks
    send_at: datetime | None = None
    if campaign.schedule == Campaign.Schedule.AT and campaign.send_at and campaign.send_at > now:
        send_at = campaign.send_at
    elif campaign.schedule == Campaign.Schedule.LOCAL_TIME:
        send_at = next_local_time(at=campaign.local_time, on=campaign.local_date, zone=zone, now=now)
    if campaign.quiet_hours_start is not None and campaign.quiet_hours_end is not None:
        moved = after_quiet_hours(
            send_at or now, start=campaign.quiet_hours_start, end=campaign.quiet_hours_end, zone=zone
        )
        if moved != (send_at or now):
            send_at = moved
    return send_at


# --- Drafts -------------------------------------------------------------------------------------------------

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
)


@transaction.atomic
def campaign_create(*, created_by=None, **fields) -> Campaign:
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
def campaign_update(*, campaign: Campaign, **fields) -> Campaign:
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
