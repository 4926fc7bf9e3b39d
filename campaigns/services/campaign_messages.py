"""What a campaign sends each contact: the message of the campaign itself (when, paced how) and of each follow-up
step, as (MessageRequest, content or RenderFailure) items for deliveries.services.bulk.messages_create_many."""

from __future__ import annotations

import zoneinfo
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

from content.models import MessageTemplate
from content.services.templates import RenderedContent, TemplateRenderError
from deliveries.services.bulk import RenderFailure
from deliveries.services.dependencies import DEFAULT_WINDOW, ENGAGEMENT_CONDITIONS
from deliveries.services.messages import MessageRequest
from guard.services.destinations import destination_refused, destinations_restricted
from guard.services.quiet_hours import after_quiet_hours

from ..models import Campaign, CampaignStep, Contact
from ..scheduling import next_local_time, paced, zone_named
from ..selectors import ADDRESS_FIELDS
from .contacts import template_render_for_contact

Item = tuple[MessageRequest, RenderedContent | RenderFailure]


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
        assert campaign.local_time is not None, "campaign_problems refuses a local-time campaign without its time"
        send_at = next_local_time(at=campaign.local_time, on=campaign.local_date, zone=zone, now=now)
    if campaign.quiet_hours_start is not None and campaign.quiet_hours_end is not None:
        moved = after_quiet_hours(
            send_at or now, start=campaign.quiet_hours_start, end=campaign.quiet_hours_end, zone=zone
        )
        if moved != (send_at or now):
            send_at = moved
    return send_at


def first_messages(campaign: Campaign, contacts: list[Contact], *, state: dict, now: datetime) -> Iterator[Item]:
    """The campaign's own message to each of `contacts`, in order; counts the pacing on in `state` (its slots
    taken per send time, and the shift a pause added)."""
    template = campaign.template
    assert template is not None, "a campaign without a template is never launched"
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
        yield request, _rendered(template, contact)


def contacts_allowed(contacts: list[Contact], *, channel: str, refused: Counter[str]) -> list[Contact]:
    """The contacts a message on `channel` may go to under the destination allowlists (guard.services.
    destinations), in order; the others are counted in `refused` by country. Without a list, all of them, and no
    number is parsed."""
    if not destinations_restricted(channel):
        return contacts
    address_field = ADDRESS_FIELDS[channel]
    kept = []
    for contact in contacts:
        refusal = destination_refused(channel=channel, recipient=getattr(contact, address_field))
        if refusal is None:
            kept.append(contact)
        else:
            refused[refusal.country] += 1
    return kept


def step_messages(
    campaign: Campaign,
    step: CampaignStep,
    contacts: list[Contact],
    parent_ids: list[int | None],
    refused: Counter[str] | None = None,
) -> tuple[list[Item], list[int]]:
    """The step's message for each contact whose message of the step before is `parent_ids[i]` (None: their
    chain has stopped) and who can be sent the step's channel (consent, an address, and a country its allowlist
    allows: the others are counted in `refused` by country), each depending on its parent. Returns the items and,
    for each, its contact's index in `contacts`."""
    template = step.template
    channel = template.channel
    engagement = step.condition in ENGAGEMENT_CONDITIONS
    window = DEFAULT_WINDOW if engagement and step.window is None else step.window
    restricted = destinations_restricted(channel)
    items, positions = [], []
    for index, contact in enumerate(contacts):
        parent_id = parent_ids[index]
        address = getattr(contact, ADDRESS_FIELDS[channel])
        if parent_id is None or not address or not getattr(contact, f"{channel}_consent"):
            continue
        if restricted:
            refusal = destination_refused(channel=channel, recipient=address)
            if refusal is not None:
                if refused is not None:
                    refused[refusal.country] += 1
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
                "depends_on_window": window if engagement else None,
            },
        )
        items.append((request, _rendered(template, contact)))
        positions.append(index)
    return items, positions


def _rendered(template: MessageTemplate, contact: Contact) -> RenderedContent | RenderFailure:
    try:
        return template_render_for_contact(template=template, contact=contact)
    except TemplateRenderError as error:
        return RenderFailure(error.reason)
