"""Reads: the contacts of a segment, what a contact brings to a template's context, and a campaign's figures.

A campaign's figures must stay cheap at a million messages: counts by status come from one GROUP BY on the
(campaign, status) index, failures from the failed rows only (top codes), segments from a bounded sample, and
engagement and opt-outs from the analytics rollups; nothing here reads every message of a campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, F, Max, QuerySet, Sum, When
from django.utils import timezone

from analytics.selectors import campaign_funnel as analytics_campaign_funnel
from analytics.selectors import campaign_series as analytics_campaign_series
from content.services.sms_segments import sms_segments
from deliveries.backends.twilio_errors import reason_for
from deliveries.models import ArchivedMessageTally, Message, Status
from deliveries.selectors import archived_status_counts, counts_added, message_status_counts

from .models import Contact, Segment
from .segment_filters import filters_q


def segment_contacts(*, segment: Segment) -> QuerySet[Contact]:
    """The contacts the segment selects now: of its list (if any) and passing its filters."""
    contacts = segment.contact_list.contacts.all() if segment.contact_list is not None else Contact.objects.all()
    return contacts.filter(filters_q(segment.filters, match=segment.match))


def contact_context(*, contact: Contact) -> dict[str, Any]:
    """The template variables the contact fills: its custom attributes and its fields by name (these are
    content.services.templates.CONTACT_VARIABLES, which templates may use undeclared).

    Blank fields are left out, so a template's default (or a refusal naming the variable) applies instead of
    an empty value.
    """
    fields = {
        "name": contact.name,
        "first_name": contact.name.split()[0] if contact.name.strip() else "",
        "phone": contact.phone,
        "email": contact.email,
        "language": contact.language,
        "time_zone": contact.time_zone,
    }
    context = {key: value for key, value in contact.attributes.items() if value not in (None, "")}
    context.update({key: value for key, value in fields.items() if value})
    return context


# The contact field that holds the address for each channel.
ADDRESS_FIELDS = {"sms": "phone", "whatsapp": "phone", "email": "email"}


def campaign_audience(*, campaign) -> QuerySet[Contact]:
    """Everyone the campaign is aimed at: its segment's contacts, or its list's."""
    if campaign.segment_id:
        return segment_contacts(segment=campaign.segment)
    if campaign.contact_list_id:
        return campaign.contact_list.contacts.all()
    return Contact.objects.none()


def campaign_recipients(*, campaign, channel: str) -> QuerySet[Contact]:
    """The audience members who can receive on `channel`: they consented to it and have an address for it."""
    return _reachable_on(campaign_audience(campaign=campaign), channel)


def campaign_recipients_between(*, campaign, channel: str, after: int, upto: int | None = None) -> QuerySet[Contact]:
    """campaign_recipients with ids above `after` (and at most `upto`), as the fan-out reads them a chunk at a
    time. For a list's campaign the range is put on the list's memberships too: PostgreSQL does not carry a
    range across a join, and the join read the list's memberships from its first contact for every chunk
    (quadratic in the list's size: 14 ms a chunk at 100,000 contacts, against 2.5 ms)."""
    if campaign.contact_list_id and not campaign.segment_id:
        members = Contact.lists.through.objects.filter(contactlist_id=campaign.contact_list_id, contact_id__gt=after)
        if upto is not None:
            members = members.filter(contact_id__lte=upto)
        contacts = Contact.objects.filter(pk__in=members.values("contact_id"))
    else:
        contacts = campaign_audience(campaign=campaign)
    contacts = contacts.filter(pk__gt=after)
    if upto is not None:
        contacts = contacts.filter(pk__lte=upto)
    return _reachable_on(contacts, channel)


def _reachable_on(contacts: QuerySet[Contact], channel: str) -> QuerySet[Contact]:
    return contacts.filter(**{f"{channel}_consent": True}).exclude(**{ADDRESS_FIELDS[channel]: ""})


def campaign_status_counts(*, campaign) -> dict[str, int]:
    """How many of the campaign's messages are in each status now (one GROUP BY on an index), the archived ones
    included (their tallies)."""
    return counts_added(message_status_counts(campaign=campaign), archived_status_counts(campaign_id=campaign.pk))


def campaign_progress(*, campaign) -> dict[str, Any]:
    """The campaign's progress as the campaign page shows it.

    targeted: messages created for the audience; waiting: scheduled or held by a pause; queued: handed to the
    workers (queued or sending); sent: accepted by the provider (whatever happened next); delivered; failed
    (refused, undeliverable or unrenderable); suppressed; cancelled; not_allowed: messages not created because
    their destination country is not allowed (by country, with not_allowed_total). `by_status` has the raw counts.
    """
    counts = campaign_status_counts(campaign=campaign)
    # Messages the fan-out did not create because the destination allowlists refuse their country, by country.
    not_allowed = dict(sorted(campaign.fanout_state.get("not_allowed", {}).items()))

    def total(*statuses: str) -> int:
        return sum(counts.get(status, 0) for status in statuses)

    return {
        "targeted": campaign.targeted,
        # Everyone the fan-out will create a message for (counted at launch, less those it found it may not send
        # to); `targeted` grows towards it.
        "recipients": max(campaign.fanout_state.get("recipients", 0) - sum(not_allowed.values()), campaign.targeted),
        "excluded": campaign.excluded,
        "not_allowed": not_allowed,
        "not_allowed_total": sum(not_allowed.values()),
        "waiting": total("scheduled", "paused"),
        "queued": total("queued", "sending"),
        "sent": total("sent", "delivered", "undelivered"),
        "delivered": total("delivered"),
        "failed": total("failed", "undelivered"),
        # The provider-feedback work adds the `suppressed` status; counted here as soon as it exists.
        "suppressed": total("suppressed"),
        "cancelled": total("cancelled"),
        # Held by the cost guard (a spend cap, a velocity limit): a person releases or cancels them.
        "held": total("held"),
        "by_status": counts,
    }


def campaign_reach(*, campaign) -> dict[str, int]:
    """Before launch: how many the campaign would go to now (audience members with consent and an address for
    its channel), of how many in its audience. Two COUNTs."""
    audience = campaign_audience(campaign=campaign).count()
    if campaign.template_id is None:
        return {"audience": audience, "recipients": 0, "excluded": audience}
    recipients = campaign_recipients(campaign=campaign, channel=campaign.template.channel).count()
    return {"audience": audience, "recipients": recipients, "excluded": audience - recipients}


# Message statuses that count as a failure on the campaign page, each with its error code.
FAILURE_STATUSES = (Status.FAILED, Status.UNDELIVERED)
TWILIO_CHANNELS = ("sms", "whatsapp")


def campaign_failures(*, campaign, limit: int = 10) -> dict[str, Any]:
    """The campaign's failed and undelivered messages grouped by error code, the commonest `limit` codes, each with
    a reason a person can read: Twilio's documented text for its codes, else the error a message recorded.
    Reads the failed rows only (through the (campaign, status) index), never the rest."""
    rows = list(
        Message.objects.filter(campaign=campaign, status__in=FAILURE_STATUSES)
        .order_by()
        .values("last_error_code")
        .annotate(count=Count("pk"), example=Max("last_error_message"), channel=Max("channel"))
    )
    rows = _with_archived_failures(rows, campaign_id=campaign.pk)
    codes = [
        {
            "code": row["last_error_code"],
            "count": row["count"],
            "reason": _failure_reason(row["last_error_code"], row["channel"], row["example"] or ""),
            "docs_url": _error_docs_url(row["last_error_code"], row["channel"]),
        }
        for row in rows[:limit]
    ]
    return {
        "codes": codes,
        "total": sum(row["count"] for row in rows),
        "other_codes": len(rows) - len(codes),
        "other_count": sum(row["count"] for row in rows[limit:]),
    }


def _with_archived_failures(rows: list[dict[str, Any]], *, campaign_id: int) -> list[dict[str, Any]]:
    """The live failures' groups merged with the archived ones' (same code: counts added, the greater example and
    channel, as Max gives), commonest first."""
    by_code = {row["last_error_code"]: row for row in rows}
    archived = ArchivedMessageTally.objects.filter(campaign_id=campaign_id, status__in=FAILURE_STATUSES)
    for tally in archived.order_by():
        row = by_code.setdefault(
            tally.last_error_code,
            {"last_error_code": tally.last_error_code, "count": 0, "example": None, "channel": tally.channel},
        )
        row["count"] += tally.messages
        row["example"] = max(row["example"] or "", tally.error_example) or row["example"]
        row["channel"] = max(row["channel"], tally.channel)
    return sorted(by_code.values(), key=lambda row: (-row["count"], row["last_error_code"]))


def _failure_reason(code: str, channel: str, example: str) -> str:
    if code and channel in TWILIO_CHANNELS and code.isdigit():
        return reason_for(code, fallback=example)
    return example or "No reason recorded."


def _error_docs_url(code: str, channel: str) -> str:
    if code.isdigit() and channel in TWILIO_CHANNELS:
        return f"https://www.twilio.com/docs/api/errors/{code}"
    return ""


SEGMENT_SAMPLE = 1000


def campaign_segments(
    *, campaign, sent_count: int | None = None, sample: int = SEGMENT_SAMPLE
) -> dict[str, Any] | None:
    """The SMS segments the campaign's sent messages used (what a provider bills): exact up to `sample` messages,
    beyond that the sample's average times the count, marked as an estimate. None for channels not billed by the
    segment. `sent_count`: the campaign's sent count when the caller has it (saves counting them again). Price per
    segment: not configured yet (issue #24), so no amount is shown."""
    if campaign.template_id is None or campaign.template.channel != "sms":
        return None
    sent_statuses = (Status.SENT, Status.DELIVERED, Status.UNDELIVERED)
    sent_messages = Message.objects.filter(campaign=campaign, status__in=sent_statuses)
    bodies = list(sent_messages.order_by().values_list("body", flat=True)[:sample])
    counted = sum(sms_segments(body).segments for body in bodies)
    # Archived messages' segments were counted when they were archived: exact, whatever the sample.
    archived = ArchivedMessageTally.objects.filter(campaign_id=campaign.pk, status__in=sent_statuses).aggregate(
        messages=Sum("messages", default=0), segments=Sum("sms_segments", default=0)
    )
    if len(bodies) < sample:
        messages = len(bodies) + archived["messages"]
        return {"segments": counted + archived["segments"], "messages": messages, "estimate": False}
    if sent_count is None:
        live = sum(message_status_counts(campaign=campaign, status__in=sent_statuses).values())
    else:
        live = sent_count - archived["messages"]
    estimate = round(counted * live / len(bodies)) + archived["segments"]
    return {"segments": estimate, "messages": live + archived["messages"], "estimate": True}


# What a sent message cost: the provider's price once it reported one in the price list's currency (the actual
# price job, deliveries.services.actual_prices), its estimate until then.
MESSAGE_COST = Case(
    When(actual_cost__isnull=False, actual_cost_currency=F("cost_currency"), then=F("actual_cost")),
    default=F("estimated_cost"),
)
# The statuses a provider bills: it accepted the message (whatever happened next).
BILLED_STATUSES = (Status.SENT, Status.DELIVERED, Status.UNDELIVERED)


@dataclass(frozen=True)
class CampaignSpend:
    """What a campaign's messages sent so far cost. `total` is None when they were priced in several
    currencies; `unpriced` counts sent messages without a price (not counted in `total`)."""

    total: Decimal | None
    currency: str
    messages: int
    unpriced: int

    def as_json(self) -> dict[str, Any]:
        return {
            "total": None if self.total is None else str(self.total),
            "currency": self.currency,
            "messages": self.messages,
            "unpriced_messages": self.unpriced,
        }


def campaign_spent(*, campaign) -> CampaignSpend:
    """The cost of the campaign's messages sent so far (one GROUP BY over its sent rows, through the (campaign,
    status) index). Archived messages are not included: their tallies keep no cost."""
    rows = (
        Message.objects.filter(campaign=campaign, status__in=BILLED_STATUSES)
        .order_by()
        .values("cost_currency")
        .annotate(amount=Sum(MESSAGE_COST), messages=Count("pk"))
    )
    priced = {row["cost_currency"]: row for row in rows if row["cost_currency"]}
    unpriced = sum(row["messages"] for row in rows if not row["cost_currency"])
    messages = unpriced + sum(row["messages"] for row in priced.values())
    if len(priced) > 1:
        return CampaignSpend(total=None, currency="", messages=messages, unpriced=unpriced)
    currency, row = next(iter(priced.items()), ("", {"amount": None}))
    # SQLite sums decimals as floats: back to the six places prices have.
    total = Decimal(row["amount"] or 0).quantize(Decimal("0.000001"))
    return CampaignSpend(total=total, currency=currency, messages=messages, unpriced=unpriced)


ENGAGEMENT_METRICS = ("opened", "clicked", "opted_out", "bounced", "complained")


def campaign_engagement(*, campaign_id: int) -> dict[str, int]:
    """Messages opened, messages clicked, and the opt-outs, bounces and complaints providers reported for the
    campaign's messages, from the analytics rollups (a few rows, however big the campaign)."""
    figures = analytics_campaign_funnel(campaign_id)
    return {metric: figures[metric] for metric in ENGAGEMENT_METRICS}


# What the campaign page's chart draws, per hour.
SERIES_METRICS = ("sent", "delivered", "undelivered", "failed", "opened", "clicked")


def campaign_progress_series(*, campaign) -> list[dict[str, Any]]:
    """The campaign's sent, delivered, failed (failed or undelivered), opened and clicked messages per hour, up to
    now while it can still change."""
    live = campaign.status in ("scheduled", "running", "paused") or campaign.summary_sent_at is None
    series = analytics_campaign_series(campaign.pk, SERIES_METRICS, until=timezone.now() if live else None)
    return [
        {
            "hour": point["hour"],
            "sent": point["sent"],
            "delivered": point["delivered"],
            "failed": point["failed"] + point["undelivered"],
            "opened": point["opened"],
            "clicked": point["clicked"],
        }
        for point in series
    ]


# The funnel's steps: (key, label, the step its rate is a share of).
FUNNEL_STEPS = [
    ("targeted", "Targeted", None),
    ("sent", "Sent", "targeted"),
    ("delivered", "Delivered", "sent"),
    ("opened", "Opened", "delivered"),
    ("clicked", "Clicked", "delivered"),
    ("opted_out", "Opted out", "delivered"),
]


# Channels whose providers report opens and clicks; elsewhere those steps are "not tracked", not 0 %.
ENGAGEMENT_CHANNELS = ("email",)


def campaign_funnel(
    *, progress: dict[str, Any], engagement: dict[str, int], channel: str = "email"
) -> list[dict[str, Any]]:
    """Targeted → sent → delivered → opened → clicked, and opted out: each step's count, its rate (a share of the
    step it follows, None when that is 0 or the channel does not report it) and its width on the page (a share
    of the targeted)."""
    counts = {
        "targeted": max(progress["recipients"], progress["targeted"]),
        "sent": progress["sent"],
        "delivered": progress["delivered"],
        **{key: engagement.get(key, 0) for key in ("opened", "clicked", "opted_out")},
    }
    top = max(counts["targeted"], 1)
    steps = []
    for key, label, of in FUNNEL_STEPS:
        whole = counts[of] if of else 0
        tracked = key not in ("opened", "clicked") or channel in ENGAGEMENT_CHANNELS
        steps.append(
            {
                "key": key,
                "label": label,
                "count": counts[key],
                "rate": round(100 * counts[key] / whole, 1) if whole and tracked else None,
                "of": of or "",
                "tracked": tracked,
                "width": round(100 * counts[key] / top, 2),
            }
        )
    return steps
