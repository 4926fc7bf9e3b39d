"""Creating, cancelling and retrying messages: the services behind the API, the admin and the commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.models import MessageTemplate
from campaigns.services import RenderedContent, TemplateRenderError, template_render

from ..addresses import normalize_recipient
from ..models import ApiKey, Message, MessageEvent, Priority, Status
from ..state import transition
from .dispatch import enqueue_messages_on_commit, new_job_id

# Channels with a working backend; WhatsApp and more arrive with the provider feedback work.
SUPPORTED_CHANNELS = ("sms", "email")


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
    dedupe_key: str | None = None  # unique among messages: a second request with the same key is not stored


def message_render(request: MessageRequest) -> RenderedContent:
    """The content the message will carry: its template rendered with its context, or the text given.

    Raises campaigns.services.TemplateRenderError when the template cannot be rendered.
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
) -> tuple[MessageRequest, RenderedContent]:
    """Check a message request the same way for the API, the admin and the commands.

    Returns the request with the recipient normalised, and the rendered content. `language` picks the
    template's version for that language (falling back to the template's own). Raises MessageValidationError.
    """
    errors: dict[str, list[str]] = {}
    if channel not in SUPPORTED_CHANNELS:
        raise MessageValidationError({"channel": [f"'{channel}' is not a channel Tidings sends on."]})
    try:
        recipient = normalize_recipient(channel, to)
    except DjangoValidationError as error:
        errors["to"] = list(error.messages)
        recipient = to
    if isinstance(template, str) and template:
        slug = template
        template = MessageTemplate.objects.filter(slug=slug).first()
        if template is None:
            errors["template"] = [f"No template with slug '{slug}'."]
    if template is not None and template.channel != channel:
        errors["template"] = [f"Template '{template.slug}' is for {template.channel}, not {channel}."]
    if not template and not body:
        errors["body"] = ["Give a body, or a template to render one."]
    elif not template and channel == "email" and not subject:
        errors["subject"] = ["An email needs a subject (or a template that has one)."]
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
        send_at=send_at,
        priority=priority or Priority.DEFAULT,
        metadata=metadata or {},
        sender=sender or "",
        language=language or "",
    )
    try:
        content = message_render(request)
    except TemplateRenderError as error:
        raise MessageValidationError({error.field if template is None else "template": [error.reason]}) from error
    return request, content


def _initial_status(send_at: datetime | None, now: datetime) -> str:
    return Status.SCHEDULED if send_at is not None and send_at > now else Status.QUEUED


@transaction.atomic
def message_create(
    *,
    request: MessageRequest,
    content: RenderedContent | None = None,
    created_by=None,
    api_key: ApiKey | None = None,
    campaign=None,
) -> Message:
    """Store a message and, once the row is committed, queue it (or leave it to the dispatcher if scheduled).

    `content` is the already rendered content when the caller validated it; otherwise it is rendered here.
    """
    now = timezone.now()
    content = content or message_render(request)
    status = _initial_status(request.send_at, now)
    message = Message.objects.create(
        channel=request.channel,
        recipient=request.recipient,
        sender=request.sender,
        subject=content.subject,
        body=content.body,
        html_body=content.html_body,
        template=request.template,
        context=request.context,
        metadata=request.metadata,
        priority=request.priority,
        send_at=request.send_at,
        status=status,
        job_id=new_job_id() if status == Status.QUEUED else "",
        queued_at=now if status == Status.QUEUED else None,
        created_by=created_by,
        api_key=api_key,
        campaign=campaign,
        dedupe_key=request.dedupe_key,
    )
    who = f"API key {api_key.name}" if api_key else (f"{created_by}" if created_by else "system")
    when = f" for {request.send_at:%Y-%m-%d %H:%M:%S %Z}" if status == Status.SCHEDULED else ""
    MessageEvent.objects.create(message=message, to_status=status, detail=f"Created by {who}{when}.", created_at=now)
    if status == Status.QUEUED:
        enqueue_messages_on_commit([message])
    return message


def message_cancel(*, message: Message, by: str = "") -> bool:
    """Cancel a message that has not started sending. Returns False if it was already past that point."""
    moved = transition(
        [message.pk],
        to_status=Status.CANCELLED,
        from_statuses=[Status.SCHEDULED, Status.QUEUED],
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
            fields={"job_id": job_id, "send_at": None, "claim_token": None},
            detail=f"Retried by {by}." if by else "Retried.",
        )
        if moved:
            message.refresh_from_db()
            enqueue_messages_on_commit([message])
    return bool(moved)
