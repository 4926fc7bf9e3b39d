"""Creating, cancelling and retrying messages: the services behind the API, the admin and the commands."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import cache
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import setting_changed
from django.core.validators import URLValidator, validate_email
from django.db import models, transaction
from django.dispatch import receiver
from django.utils import timezone

from content.models import MessageTemplate
from content.services.sms_segments import body_length_problem
from content.services.templates import RenderedContent, TemplateRenderError, template_render
from guard.services.destinations import destination_refusal
from guard.services.pricing import message_cost_estimate
from guard.services.quiet_hours import Deferral, quiet_hours_deferral, quiet_hours_setting, recipient_zones
from guard.services.velocity import Hold, Outgoing, velocity_applies, velocity_check_many

from ..addresses import normalize_phone, normalize_recipient, normalize_whatsapp
from ..db.events import created_message_insert
from ..db.features import row_with_event_insert_is_one_statement
from ..input_limits import (
    HORIZON,
    MAX_SECONDS,
    PAST_TOLERANCE,
    json_value_problem,
    text_problem,
)
from ..models import ApiKey, Category, IdempotencyKey, Message, Priority, Purpose, Status
from ..state import transition
from .dependencies import dependency_describe, dependency_validate, dependents_settle
from .dispatch import enqueue_messages_on_commit, new_job_id
from .idempotency import idempotent_create

# Channels with a working backend (deliveries/backends/__init__.py).
SUPPORTED_CHANNELS = ("sms", "email", "whatsapp", "messenger")
# Channels sent through Twilio, where media (MMS) and Content templates apply.
TWILIO_CHANNELS = ("sms", "whatsapp")
MAX_MEDIA_URLS = 10  # Twilio's limit per message
MAX_SUBJECT_CHARACTERS = 255  # Message.subject
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
# Alphanumeric sender ids: up to 11 letters, digits and spaces, at least one letter.
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
CATEGORIES = frozenset(Category.values)  # Category.values rebuilds its list on every call
PURPOSES = frozenset(Purpose.values)


@dataclass
class MessageRequest:
    """A validated request for one message, whichever way it came in."""

    channel: str
    recipient: str
    body: str = ""
    subject: str = ""
    html_body: str = ""
    template: MessageTemplate | None = None
    context: dict[str, Any] = field(default_factory=dict)
    send_at: datetime | None = None
    priority: str = Priority.DEFAULT
    metadata: dict[str, Any] = field(default_factory=dict)
    sender: str = ""
    language: str = ""  # picks the template's translation; empty means the template's own language
    category: str = Category.MARKETING
    purpose: str = ""  # Purpose.OTP: a one-time code, under the strictest velocity limits (guard.services.velocity)
    media_urls: list[str] = field(default_factory=list)
    content_sid: str = ""
    content_variables: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None
    # Send only after another message reached a condition (deliveries.services.dependencies.dependency_validate).
    dependency: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None  # unique among messages: a second request with the same key is not stored
    # False: send at the time asked even inside the recipient's quiet hours (QUIET_HOURS; see message_deferral).
    quiet_hours: bool = True
    # Set when the quiet hours moved send_at: why, for the message's timeline.
    deferral: Deferral | None = None


def message_render(request: MessageRequest) -> RenderedContent:
    """The content the message will carry: its template rendered with its context, or the text given.

    Raises content.services.templates.TemplateRenderError when the template cannot be rendered.
    """
    if request.template is not None:
        return template_render(template=request.template, context=request.context, language=request.language)
    return RenderedContent(subject=request.subject, body=request.body, html_body=request.html_body)


class MessageValidationError(ValueError):
    """The request cannot become a message. `errors` maps field names to readable messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))
        self.errors = errors


def message_request_validate(
    *,
    channel: str,
    to: str,
    body: str = "",
    subject: str = "",
    html_body: str = "",
    template: str | MessageTemplate | None = None,
    context: dict[str, Any] | None = None,
    send_at: datetime | None = None,
    priority: str = Priority.DEFAULT,
    metadata: dict[str, Any] | None = None,
    sender: str = "",
    language: str = "",
    category: str = Category.MARKETING,
    purpose: str = "",
    media_urls: list[str] | None = None,
    content_sid: str = "",
    content_variables: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    valid_for: int | None = None,
    depends_on: int | Message | None = None,
    depends_on_condition: str = "",
    depends_on_delay: int | float | timedelta | None = None,
    depends_on_window: int | float | timedelta | None = None,
    quiet_hours: bool = True,
) -> tuple[MessageRequest, RenderedContent]:
    """Check a message request the same way for the API, the admin and the commands.

    Returns the request with the recipient and sender normalised, and the rendered content. `language` picks the
    template's version for that language (falling back to the template's own). `expires_at`, or `valid_for`
    seconds after the send time, is the "too late" cutoff: past it the message fails instead of going out late
    (SMS_VALID_FOR / EMAIL_VALID_FOR give a default per channel). `depends_on` (a message or its id) with
    `depends_on_condition`, `_delay` and `_window` makes it wait for that message (see services.dependencies).
    A message due inside the recipient's quiet hours gets the end of them as its send time (message_deferral),
    unless `quiet_hours` is False. Raises MessageValidationError.
    """
    errors: dict[str, list[str]] = {}
    template = template or None  # "" and None both mean no template
    if channel not in SUPPORTED_CHANNELS:
        raise MessageValidationError({"channel": [f"'{channel}' is not a channel Tidings sends on."]})
    try:
        recipient = normalize_recipient(channel, to)
    except DjangoValidationError as error:
        errors["to"] = list(error.messages)
        recipient = to
    else:
        # Every path (API, batch, send_bulk, compose) checks here; an API key's own list is checked by
        # api_key_message_refusal, campaigns' contacts by their fan-out.
        refusal = destination_refusal(channel=channel, recipient=recipient)
        if refusal:
            errors["to"] = [refusal]
    try:
        sender = sender_normalize(channel, sender or "")
    except DjangoValidationError as error:
        errors["sender"] = list(error.messages)
    if (category or Category.MARKETING) not in CATEGORIES:
        errors["category"] = [f"'{category}' is not a category; use one of {', '.join(Category.values)}."]
    if purpose and purpose not in PURPOSES:
        errors["purpose"] = [f"'{purpose}' is not a purpose; use {', '.join(Purpose.values)} or leave it out."]
    elif purpose == Purpose.OTP and category != Category.TRANSACTIONAL:
        # A code sent as marketing would also be held back by every opt-out; and it is what pumping sends.
        errors["purpose"] = ["A one-time code (purpose 'otp') is sent with category 'transactional'."]
    errors.update(_size_errors(subject=subject, body=body, html_body=html_body))
    errors.update(
        _json_errors(context=context or {}, metadata=metadata or {}, content_variables=content_variables or {})
    )
    errors.update(_send_at_errors(send_at))
    media_urls = list(media_urls or [])
    if media_urls:
        if channel not in TWILIO_CHANNELS:
            errors["media_urls"] = [f"Media can be sent by SMS (MMS) or WhatsApp, not {channel}."]
        elif len(media_urls) > MAX_MEDIA_URLS:
            errors["media_urls"] = [f"At most {MAX_MEDIA_URLS} media URLs per message."]
        else:
            errors.update(_media_url_errors(media_urls))
    content_variables = content_variables or {}
    if content_sid and (channel not in TWILIO_CHANNELS or not CONTENT_SID.match(content_sid)):
        errors["content_sid"] = [
            "A Twilio Content SID looks like HX followed by 32 hex digits, and applies to WhatsApp and SMS only."
        ]
    if content_variables and not content_sid:
        errors["content_variables"] = ["Content variables need a content_sid to fill in."]
    elif not isinstance(content_variables, dict):
        errors["content_variables"] = ['Give the variables as an object, like {"1": "Ada"}.']
    if isinstance(template, str):  # never "" here: that became None above
        slug = template
        template = MessageTemplate.objects.filter(slug=slug).first()
        if template is None:
            errors["template"] = [f"No template with slug '{slug}'."]
    if template is not None and template.channel != channel:
        errors["template"] = [f"Template '{template.slug}' is for {template.channel}, not {channel}."]
    if not template and not body and not media_urls and not content_sid:
        errors["body"] = ["Give a body, or a template to render one."]
    elif not template and channel == "email" and not subject:
        errors["subject"] = ["An email needs a subject (or a template that has one)."]
    deferral = None
    if quiet_hours and not depends_on and not errors:
        # A waiting message's time is its parent's to decide; a request with errors has no time worth computing.
        deferral = message_deferral(channel=channel, recipient=recipient, category=category, send_at=send_at)
    if deferral is not None and expires_at is not None and expires_at <= deferral.until:
        errors["expires_at"] = [
            f"The deadline comes before the end of the recipient's quiet hours. {deferral.describe()} "
            'Give a later deadline, or "quiet_hours": false to send it at once.'
        ]
    else:
        expires_at, deadline_errors = _deadline(
            channel,
            send_at=deferral.until if deferral else send_at,
            expires_at=expires_at,
            valid_for=valid_for,
        )
        errors.update(deadline_errors)
    dependency, dependency_errors = dependency_validate(
        channel=channel,
        depends_on=depends_on,
        condition=depends_on_condition or "",
        delay=depends_on_delay,
        window=depends_on_window,
        send_at=send_at,
    )
    errors.update(dependency_errors)
    if errors:
        raise MessageValidationError(errors)
    request = MessageRequest(
        channel=channel,
        recipient=recipient,
        body=body or "",
        subject=subject or "",
        html_body=html_body or "",
        template=template or None,
        context=context or {},
        send_at=deferral.until if deferral else send_at,
        priority=priority or Priority.DEFAULT,
        metadata=metadata or {},
        sender=sender or "",
        language=language or "",
        category=category or Category.MARKETING,
        purpose=purpose or "",
        media_urls=media_urls,
        content_sid=content_sid or "",
        content_variables={str(k): str(v) for k, v in content_variables.items()},
        expires_at=expires_at,
        dependency=dependency,
        quiet_hours=quiet_hours,
        deferral=deferral,
    )
    try:
        content = message_render(request)
    except TemplateRenderError as error:
        raise MessageValidationError({error.field if template is None else "template": [error.reason]}) from error
    too_long = _rendered_length_error(channel, content, rendered=template is not None)
    if too_long:
        raise MessageValidationError({"body" if template is None else "template": [too_long]})
    return request, content


def message_deferral(*, channel: str, recipient: str, category: str, send_at: datetime | None) -> Deferral | None:
    """When a message due at `send_at` (None: now) falls inside its recipient's quiet hours, when it goes instead.

    Marketing messages keep QUIET_HOURS, transactional ones QUIET_HOURS_TRANSACTIONAL (off by default: a one-time
    code is wanted now). Both off, the default, costs one cached lookup.
    """
    window = quiet_hours_setting(transactional=category == Category.TRANSACTIONAL)
    if window is None:
        return None
    return quiet_hours_deferral(
        window=window,
        moment=send_at or timezone.now(),
        zones=recipient_zones(channel=channel, recipient=recipient),
    )


def sender_normalize(channel: str, sender: str) -> str:
    """A per-message sender: a number, a Twilio Messaging Service SID or an alphanumeric id for SMS, a number or
    Messaging Service for WhatsApp, an address (with an optional name) for email. Messenger sends as the page."""
    sender = sender.strip()
    if not sender:
        return ""
    if channel == "email":
        _, address = parseaddr(sender)
        validate_email(address)
        return sender
    if channel == "messenger":
        raise DjangoValidationError("Messenger messages are sent by the page whose token is configured.")
    if MESSAGING_SERVICE_SID.match(sender):
        return sender
    if channel == "whatsapp":
        return normalize_whatsapp(sender)
    if ALPHANUMERIC_SENDER.match(sender) and not sender.replace(" ", "").isdigit():
        return sender
    return normalize_phone(sender)


def _media_url_errors(media_urls: list[str]) -> dict[str, list[str]]:
    validate = URLValidator(schemes=["http", "https"])
    for url in media_urls:
        try:
            validate(url)
        except DjangoValidationError:
            return {"media_urls": [f"'{url}' is not a public http(s) URL."]}
    return {}


def _size_errors(**texts: str) -> dict[str, list[str]]:
    errors = {}
    for name, text in texts.items():
        limit = MAX_SUBJECT_CHARACTERS if name == "subject" else None
        problem = text_problem(text or "", **({"max_characters": limit} if limit else {}))
        if problem:
            errors[name] = [f"The {name} {problem}."]
    return errors


def _json_errors(**values: Any) -> dict[str, list[str]]:
    errors = {}
    for name, value in values.items():
        if not value:
            continue
        problem = json_value_problem(value)
        if problem:
            errors[name] = [f"The {name} {problem}."]
    return errors


def _send_at_errors(send_at: datetime | None) -> dict[str, list[str]]:
    """A send time must be from now (less PAST_TOLERANCE, for clocks and retried requests) to HORIZON ahead."""
    if send_at is None:
        return {}
    now = timezone.now()
    if send_at < now - PAST_TOLERANCE:
        minutes = int(PAST_TOLERANCE.total_seconds() // 60)
        when = send_at.isoformat()
        return {"send_at": [f"{when} is more than {minutes} minutes in the past; leave send_at out to send now."]}
    if send_at > now + HORIZON:
        return {"send_at": [f"send_at is at most {HORIZON.days} days ahead."]}
    return {}


def _rendered_length_error(channel: str, content: RenderedContent, *, rendered: bool) -> str | None:
    """Twilio refuses SMS and WhatsApp bodies over 1,600 characters (error 21617): refused here, with the count.
    A template's output is also held to the limits its input was (`rendered`); a body given as is was already."""
    too_long = body_length_problem(channel=channel, body=content.body)
    if too_long:
        return too_long
    if not rendered:
        return None
    for name in ("body", "html_body"):
        problem = text_problem(getattr(content, name))
        if problem:
            return f"The rendered {name} {problem}."
    return None


@cache
def default_valid_for(channel: str) -> int | None:
    """SMS_VALID_FOR, EMAIL_VALID_FOR...: read once per channel (see addresses.default_region for why)."""
    return getattr(settings, f"{channel.upper()}_VALID_FOR", None)


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    if setting.endswith("_VALID_FOR"):
        default_valid_for.cache_clear()


def _deadline(
    channel: str, *, send_at: datetime | None, expires_at: datetime | None, valid_for: int | None
) -> tuple[datetime | None, dict[str, list[str]]]:
    if expires_at is not None and valid_for is not None:
        return None, {"valid_for": ["Give expires_at or valid_for, not both."]}
    now = timezone.now()
    # A send time past the horizon is refused on its own (send_at); nothing is computed from it here.
    start = min(max(send_at or now, now), now + HORIZON)
    if expires_at is None:
        valid_for = valid_for if valid_for is not None else default_valid_for(channel)
        if valid_for is None:
            return None, {}
        if not 0 < valid_for <= MAX_SECONDS:
            return None, {"valid_for": [f"valid_for is a number of seconds from 1 to {MAX_SECONDS} (a year)."]}
        expires_at = start + timedelta(seconds=valid_for)
    if expires_at <= start:
        return None, {"expires_at": ["The deadline must come after the send time."]}
    if expires_at > start + HORIZON:
        return None, {"expires_at": [f"The deadline is at most {HORIZON.days} days after the send time."]}
    return expires_at, {}


def message_fields(request: MessageRequest, content: RenderedContent) -> dict[str, Any]:
    """The columns a new message takes from its request and rendered content, one way for every path that stores
    messages (one at a time here, many at once in deliveries.services.bulk)."""
    cost, currency = message_cost_estimate(channel=request.channel, recipient=request.recipient, body=content.body)
    return {
        "channel": request.channel,
        "recipient": request.recipient,
        "sender": request.sender,
        "subject": content.subject,
        "body": content.body,
        "html_body": content.html_body,
        "template": request.template,
        "context": request.context,
        "metadata": request.metadata,
        "priority": request.priority,
        "category": request.category,
        "purpose": request.purpose,
        "media_urls": request.media_urls,
        "content_sid": request.content_sid,
        "content_variables": request.content_variables,
        "send_at": request.send_at,
        "expires_at": request.expires_at,
        "dedupe_key": request.dedupe_key,
        "estimated_cost": cost,
        "cost_currency": currency,
        **request.dependency,
    }


def _initial_status(send_at: datetime | None, now: datetime) -> str:
    return Status.SCHEDULED if send_at is not None and send_at > now else Status.QUEUED


def message_holds(requests: list[MessageRequest], *, api_key: ApiKey | None) -> list[Hold | None]:
    """Count new messages against the velocity limits (guard.services.velocity), in one Redis call: for each, None
    when it may go, else why it is held. Asks Redis nothing when no limit applies to any of them."""
    if not any(velocity_applies(request.purpose) for request in requests):
        return [None] * len(requests)
    key_id, key_name = (api_key.pk, api_key.name) if api_key is not None else (None, "")
    outgoing = [Outgoing(r.channel, r.recipient, r.purpose, key_id, key_name) for r in requests]
    return velocity_check_many(outgoing)


def held_fields(hold: Hold) -> dict[str, Any]:
    """The columns of a message held at creation: never queued, the reason where a failure's would be."""
    return {
        "status": Status.HELD,
        "job_id": "",
        "queued_at": None,
        "last_error_code": hold.code,
        "last_error_message": hold.reason,
    }


def message_create(
    *,
    request: MessageRequest,
    content: RenderedContent | None = None,
    created_by: User | None = None,
    api_key: ApiKey | None = None,
    campaign: models.Model | None = None,  # a campaigns.Campaign (deliveries does not import campaigns)
    idempotency_key: IdempotencyKey | None = None,
) -> Message:
    """Store a message and, once the row is committed, queue it (or leave it to the dispatcher if scheduled).

    `content` is the already rendered content when the caller validated it; otherwise it is rendered here.
    """
    now = timezone.now()
    content = content or message_render(request)
    status = Status.WAITING if request.dependency else _initial_status(request.send_at, now)
    values = {
        **message_fields(request, content),
        "status": status,
        "job_id": new_job_id() if status == Status.QUEUED else "",
        "queued_at": now if status == Status.QUEUED else None,
        "created_by": created_by,
        "api_key": api_key,
        "campaign": campaign,
        "idempotency_key": idempotency_key,
    }
    # Waiting messages too: otherwise depending on one message would be a way around the limits.
    hold = message_holds([request], api_key=api_key)[0]
    if hold is not None:
        values.update(held_fields(hold))
        status = Status.HELD
    who = f"API key {api_key.name}" if api_key else (f"{created_by}" if created_by else "system")
    when = f" for {request.send_at:%Y-%m-%d %H:%M:%S %Z}" if status == Status.SCHEDULED else ""
    if request.deferral is not None:
        when += f". {request.deferral.describe().removesuffix('.')}"
    if status == Status.WAITING:
        when = f", waiting for {dependency_describe(Message(**values))}"
    detail = f"Created by {who}{when}." + (f" {hold.reason}" if hold is not None else "")
    # On PostgreSQL the row and its first event are one statement, atomic on its own: no BEGIN and COMMIT
    # around it. A waiting message is settled against its parent in the same transaction as its INSERT.
    one_statement = row_with_event_insert_is_one_statement() and status != Status.WAITING
    with contextlib.nullcontext() if one_statement else transaction.atomic():
        message = created_message_insert(values, detail=detail, code=hold.code if hold else "", now=now)
        if status == Status.QUEUED:
            # Pushed at the end of the caller's transaction, or at once if the INSERT committed by itself.
            enqueue_messages_on_commit([message])
        elif status == Status.WAITING:
            # The parent may have decided already (sent, delivered, failed): settle this message now if so.
            # A waiting message always has its parent (message_request_validate made it wait for one).
            dependents_settle(parent_ids=[cast(int, message.depends_on_id)])
            message.refresh_from_db()
    return message


def message_create_idempotent(
    *,
    request: MessageRequest,
    content: RenderedContent,
    api_key: ApiKey,
    idempotency_key: str,
    fingerprint: str,
) -> tuple[Message, bool]:
    """message_create() once per API key and Idempotency-Key. Returns (message, created): a repeat of the same
    request gets the original message; the same key with another request raises IdempotencyKeyError."""
    return idempotent_create(
        api_key=api_key,
        key=idempotency_key,
        scope="messages.create",
        fingerprint=fingerprint,
        create=lambda record: message_create(request=request, content=content, api_key=api_key, idempotency_key=record),
        replay=lambda record: record.messages.get(),
    )


def message_cancel(*, message: Message, by: str = "") -> bool:
    """Cancel a message that has not started sending. Returns False if it was already past that point."""
    moved = transition(
        [message.pk],
        to_status=Status.CANCELLED,
        from_statuses=[Status.SCHEDULED, Status.QUEUED, Status.WAITING, Status.HELD],
        detail=f"Cancelled by {by}." if by else "Cancelled.",
    )
    return bool(moved)


def message_retry(*, message: Message, by: str = "") -> bool:
    """Queue a failed message again (a person's decision). Returns False if it was not failed."""
    job_id = new_job_id()
    with transaction.atomic():
        moved = transition(
            [message.pk],
            to_status=Status.QUEUED,
            from_statuses=[Status.FAILED],
            fields={"job_id": job_id, "send_at": None, "claim_token": None, "spend_counted": False},
            detail=f"Retried by {by}." if by else "Retried.",
        )
        if moved:
            message.refresh_from_db()
            enqueue_messages_on_commit([message])
    return bool(moved)


def message_review_resend(*, message: Message, by: str = "") -> bool:
    """Send a message that needs review again: a person checked that the provider does not have it.
    Returns False if it was not in review."""
    job_id = new_job_id()
    with transaction.atomic():
        moved = transition(
            [message.pk],
            to_status=Status.QUEUED,
            from_statuses=[Status.REVIEW],
            fields={"job_id": job_id, "send_at": None, "claim_token": None, "spend_counted": False},
            detail=f"Checked by {by or 'a person'}: not at the provider. Sending again.",
        )
        if moved:
            message.refresh_from_db()
            enqueue_messages_on_commit([message])
    return bool(moved)


def message_review_mark_sent(*, message: Message, by: str = "") -> bool:
    """Settle a message that needs review as sent: a person found it at the provider. False if not in review."""
    moved = transition(
        [message.pk],
        to_status=Status.SENT,
        from_statuses=[Status.REVIEW],
        fields={"last_error_code": "", "last_error_message": "", "claim_token": None},
        detail=f"Checked by {by or 'a person'}: the provider has it. Marked sent.",
    )
    return bool(moved)


def message_review_mark_failed(*, message: Message, by: str = "") -> bool:
    """Settle a message that needs review as failed, not to be sent again. False if not in review."""
    moved = transition(
        [message.pk],
        to_status=Status.FAILED,
        from_statuses=[Status.REVIEW],
        fields={"claim_token": None},
        detail=f"Marked failed by {by or 'a person'} after review.",
    )
    return bool(moved)
