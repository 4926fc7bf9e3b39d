"""A campaign's fan-out: its audience expanded into messages, a chunk of contacts at a time, on the chunk pipeline.

Each chunk is claimed by moving the campaign's cursor (the last contact id expanded) with a conditional UPDATE,
in the transaction that stores its messages and its follow-up steps. So two fan-out jobs of one campaign write
nothing twice, a crash leaves whole chunks only (the next run carries on from the cursor), and a pause, which
takes the campaign row first too, waits for the chunk being written and then holds it. Claims go in the chunks'
order (an ordered pipeline), which also keeps a paced campaign's send times in the contacts' order.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Max, QuerySet, Value
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from deliveries.services.bulk import RenderFailure, messages_create_many
from guard.services.destinations import destinations_restricted

from ..models import Campaign, Contact
from ..selectors import campaign_recipients_between
from .campaign_lifecycle import LIVE
from .campaign_messages import Item, contacts_allowed, first_messages, step_messages
from .chunk_pipeline import ChunkPipeline, Stored, pipeline_run

FAN_OUT_CHUNK = 2000
# Not template variables, never read by the fan-out: not loaded (parsing two timestamps a contact, through
# Django's time-zone loader, was a third of reading a chunk of contacts).
UNUSED_CONTACT_FIELDS = ("created_at", "updated_at")
# fanout_state's key for the messages not created because their country is not allowed: {country: count}.
NOT_ALLOWED = "not_allowed"


def campaign_fan_out(*, campaign_id: int, chunk_size: int = FAN_OUT_CHUNK, processes: int | None = None) -> int:
    """Expand the campaign's audience into messages, a chunk of contacts at a time (bounded memory: two chunks
    of contacts and their rows per process), from where the last run stopped. Returns how many messages this
    call created.

    Stops when the campaign is no longer scheduled or running (paused, cancelled); resuming calls it again.
    Safe to run twice at once: each chunk first moves the campaign's cursor with a conditional UPDATE, so only
    one run writes a given chunk. A run that loses a claim reads the campaign again and carries on from there.

    On PostgreSQL, outside a transaction, `processes` forked processes (FAN_OUT_PROCESSES) read and render the
    chunks side by side; a campaign with a rate limit keeps one, since its pacing counts on from each chunk to
    the next (and a writer thread stores each chunk while the next is rendered).
    """
    processes = settings.FAN_OUT_PROCESSES if processes is None else processes
    created = 0
    while True:
        fan_out = CampaignFanOut.from_cursor(campaign_id, chunk_size=chunk_size)
        if fan_out is None:
            return created
        finished = pipeline_run(fan_out, processes=1 if fan_out.campaign.rate_limit_per_minute else processes)
        created += fan_out.created
        if finished:
            fan_out.finish()
            return created


@dataclass
class ContactChunk:
    cursor: int  # the campaign's cursor before this chunk: its claim succeeds only from there
    end: int  # its last contact: the cursor after it
    contacts: list[Contact] | None  # None: read by the process that prepares the chunk


@dataclass
class PreparedChunk:
    cursor: int
    end: int
    contacts: list[Contact]  # those the campaign's message may go to, one per item
    items: list[Item]
    not_allowed: Counter[str]  # contacts left out by the destination allowlists, by country
    state: dict  # the pacing state after this chunk, stored with its claim
    first_send: datetime  # the earliest send time of its messages: the campaign starts no later
    now: datetime


class CampaignFanOut(ChunkPipeline[ContactChunk, PreparedChunk, int]):
    """One run of a campaign's fan-out from its stored cursor. Its answers are the messages each chunk created."""

    ordered = True

    def __init__(self, campaign: Campaign, *, chunk_size: int) -> None:
        self.campaign = campaign
        self.chunk_size = chunk_size
        self.steps = list(campaign.steps.select_related("template").prefetch_related("template__translations"))
        assert campaign.template is not None, "a campaign without a template is never launched"
        self.recipients = functools.partial(
            campaign_recipients_between, campaign=campaign, channel=campaign.template.channel
        )
        self.cursor = campaign.fanout_cursor  # in the calling process: the end of the last chunk handed out
        self.state = dict(campaign.fanout_state)  # pacing, carried from one chunk to the next
        channels = {campaign.template.channel, *(step.template.channel for step in self.steps)}
        # With an allowlist on any of its channels, each chunk counts the messages it leaves out into the campaign.
        self.restricted = any(destinations_restricted(channel) for channel in channels)
        self.created = 0

    @classmethod
    def from_cursor(cls, campaign_id: int, *, chunk_size: int) -> CampaignFanOut | None:
        """The fan-out still to do for the campaign; None when there is none (a recurring campaign fans out
        its occurrences, not itself)."""
        campaign = Campaign.objects.select_related("template").filter(pk=campaign_id).first()
        if campaign is None or campaign.status not in LIVE or campaign.fanout_done or campaign.recurrence:
            return None
        return cls(campaign, chunk_size=chunk_size)

    def chunks(self, *, handed_out: bool) -> Iterator[ContactChunk]:
        while True:
            if handed_out:  # only where each chunk ends: contact ids
                ids = self.recipients(after=self.cursor).order_by("pk").values_list("pk", flat=True)
                last = ids[: self.chunk_size].aggregate(last=Max("pk"))["last"]
                if last is None:
                    return
                chunk = ContactChunk(self.cursor, last, None)
            else:
                contacts = list(self._contacts(after=self.cursor)[: self.chunk_size])
                if not contacts:
                    return
                chunk = ContactChunk(self.cursor, contacts[-1].pk, contacts)
            yield chunk
            self.cursor = chunk.end

    def _contacts(self, **bounds: Any) -> QuerySet[Contact]:
        return self.recipients(**bounds).order_by("pk").defer(*UNUSED_CONTACT_FIELDS)

    def prepare(self, chunk: ContactChunk) -> PreparedChunk:
        contacts = chunk.contacts
        if contacts is None:
            contacts = list(self._contacts(after=chunk.cursor, upto=chunk.end))
        now = timezone.now()
        not_allowed: Counter[str] = Counter()
        assert self.campaign.template is not None  # as in __init__
        contacts = contacts_allowed(contacts, channel=self.campaign.template.channel, refused=not_allowed)
        items = list(first_messages(self.campaign, contacts, state=self.state, now=now))
        first_send = min((request.send_at or now for request, _ in items), default=now)
        state = copy.deepcopy(self.state)
        return PreparedChunk(chunk.cursor, chunk.end, contacts, items, not_allowed, state, first_send, now)

    def store(self, prepared: PreparedChunk) -> Stored[int]:
        """Claim the chunk (move the cursor past it) and store its messages and their steps, in one transaction."""
        campaign = self.campaign
        first_send = Value(prepared.first_send, output_field=DateTimeField())
        state = prepared.state
        with transaction.atomic():
            if self.restricted:
                # The count so far is the stored one: a chunk prepared in another process did not see the last
                # chunks' (they are stored in order, so the one before has committed).
                stored = Campaign.objects.filter(pk=campaign.pk).values_list("fanout_state", flat=True).first()
                state = {**state, NOT_ALLOWED: (stored or {}).get(NOT_ALLOWED, {})}
            won = Campaign.objects.filter(
                pk=campaign.pk, status__in=LIVE, fanout_cursor=prepared.cursor, fanout_done=False
            ).update(
                fanout_cursor=prepared.end,
                targeted=F("targeted") + len(prepared.items),
                fanout_state=state,
                fanout_heartbeat=prepared.now,
                starts_at=Least(Coalesce(F("starts_at"), first_send), first_send),
                updated_at=prepared.now,
            )
            if not won:
                return Stored(0, claimed=False)
            not_allowed = Counter(prepared.not_allowed)
            follow_ups = 0
            if prepared.items:
                created = messages_create_many(
                    items=prepared.items,
                    campaign=campaign,
                    created_by=campaign.created_by,
                    chunk_size=len(prepared.items),
                    collect_ids=bool(self.steps),
                )
                follow_ups = self._store_steps(prepared, created.ids, not_allowed) if self.steps else 0
            if follow_ups:
                Campaign.objects.filter(pk=campaign.pk).update(targeted=F("targeted") + follow_ups)
            if not_allowed:
                counted = Counter(state.get(NOT_ALLOWED, {})) + not_allowed
                Campaign.objects.filter(pk=campaign.pk).update(fanout_state={**state, NOT_ALLOWED: dict(counted)})
        return Stored(len(prepared.items) + follow_ups)

    def _store_steps(self, prepared: PreparedChunk, first_ids: list[int | None], not_allowed: Counter[str]) -> int:
        """Store each follow-up step's message for the chunk's contacts, each depending on the same contact's
        message of the step before (each contact has a chain of their own); in the claim's transaction, so a
        chunk's steps are stored once, together with its first messages. A chain stops at a step the contact
        cannot be sent, or after a message that could not be rendered: nothing would ever release what follows.
        """
        parent_ids = _sendable_ids(first_ids, prepared.items)
        created = 0
        for step in self.steps:
            items, positions = step_messages(self.campaign, step, prepared.contacts, parent_ids, not_allowed)
            if not items:
                break
            stored = messages_create_many(
                items=items,
                campaign=self.campaign,
                created_by=self.campaign.created_by,
                chunk_size=len(items),
                collect_ids=True,
            )
            created += len(items)
            parent_ids = [None] * len(prepared.contacts)
            for index, message_id in zip(positions, _sendable_ids(stored.ids, items), strict=True):
                parent_ids[index] = message_id
        return created

    def collect(self, answer: int) -> None:
        self.created += answer

    def finish(self) -> None:
        """Mark the fan-out done, if the campaign's cursor is still where this run left it."""
        now = timezone.now()
        # starts_at: a local-time campaign with nobody to send to has started (and will complete) now.
        Campaign.objects.filter(pk=self.campaign.pk, fanout_cursor=self.cursor, status__in=LIVE).update(
            fanout_done=True, fanout_heartbeat=now, starts_at=Coalesce(F("starts_at"), Value(now))
        )


def _sendable_ids(ids: list[int | None], items: list[Item]) -> list[int | None]:
    """Each item's message id, None where it was stored as a render failure (no step follows it)."""
    return [
        message_id if not isinstance(content, RenderFailure) else None
        for message_id, (_, content) in zip(ids, items, strict=True)
    ]
