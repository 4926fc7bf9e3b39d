"""The claim: a queued message taken for its provider call (queued -> sending), and what the call is given.

A message is claimed just before its call starts, in waves of at most the free call slots, one conditional UPDATE
a wave. So `sending` means exactly "the provider may have it": if the worker dies, the messages it had not
reached are still `queued` (the reconciler queues them again) and only the calls in flight are in doubt.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ..backends.base import OutgoingMessage
from ..models import Category, Message, Status
from ..services.suppression import unsubscribe_url_for
from ..state import transition

# The columns a claimed message's provider call and the record of its outcome read (to_outgoing, record_*).
SEND_FIELDS = (
    "channel",
    "recipient",
    "sender",
    "subject",
    "body",
    "html_body",
    "metadata",
    "category",
    "attempts",
    "media_urls",
    "content_sid",
    "content_variables",
    "claim_token",
    "expires_at",
    "campaign",
    "created_at",  # for deliveries.instruments.observe_sent
    "send_at",
)


def claim_messages(message_ids: list[int], *, provider: str = "", lease_seconds: float | None = None) -> list[Message]:
    """Take queued messages for their provider call: queued -> sending in one conditional UPDATE.

    Only rows still `queued` are taken, so a message cancelled a moment ago, or already taken by another worker
    running a duplicate job, is left alone. Each claim carries a fresh token that the result must match, and a
    lease: past it, the reconciler treats the call as interrupted.
    """
    return claimed_in_order(transition(**claim_transition(message_ids, provider, lease_seconds)))


def claim_transition(
    message_ids: list[int], provider: str, lease_seconds: float | None = None, *, token: uuid.UUID | None = None
) -> dict[str, Any]:
    """claim_messages' transition (its arguments), for sending it with other transitions in one round trip. The
    claim's token is new, or `token` (the same claim tried again: database_loss.py)."""
    token = token or uuid.uuid4()
    lease = timedelta(seconds=lease_seconds or settings.SEND_LEASE_SECONDS)
    # The UPDATE returns what the call and its record need (only that: the other columns are half the cost of
    # loading a row), so the claim is one statement and its events.
    return {
        "message_ids": message_ids,
        "to_status": Status.SENDING,
        "from_statuses": [Status.QUEUED],
        "fields": {
            "claim_token": token,
            "lease_expires_at": timezone.now() + lease,
            "attempts": F("attempts") + 1,
            "spend_counted": True,  # the caps counted it before this claim (deliveries.services.spend_caps)
        },
        "detail": f"Handing to {provider}." if provider else "Handing to the provider.",
        "returning": SEND_FIELDS,
    }


def claimed_with_token(message_ids: list[int], token: uuid.UUID) -> list[Message]:
    """The messages among `message_ids` a claim with `token` holds: after a claim whose commit a lost connection
    hid, what it took (read as the claim's UPDATE returns them)."""
    return list(Message.objects.filter(pk__in=message_ids, status=Status.SENDING, claim_token=token).only(*SEND_FIELDS))


def claimed_in_order(messages: list[Message]) -> list[Message]:
    """The messages a claim returned, by id (the order their calls start in)."""
    return sorted(messages, key=lambda message: message.pk)


def to_outgoing(message: Message) -> OutgoingMessage:
    """What a backend is given for a claimed message's call."""
    marketing_email = message.channel == "email" and message.category == Category.MARKETING
    return OutgoingMessage(
        id=message.pk,
        channel=message.channel,
        recipient=message.recipient,
        sender=message.sender,
        subject=message.subject,
        body=message.body,
        html_body=message.html_body,
        metadata=message.metadata,
        category=message.category,
        attempt=message.attempts,
        media_urls=tuple(message.media_urls or ()),
        content_sid=message.content_sid,
        content_variables=dict(message.content_variables or {}),
        unsubscribe_url=unsubscribe_url_for(message.pk) if marketing_email else "",
    )
