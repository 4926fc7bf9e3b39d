"""The worker's side: claim a batch of queued messages, send them concurrently, record each outcome exactly."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ..backends import get_backend
from ..backends.base import OutgoingMessage, SendResult
from ..exceptions import DeliveryError
from ..models import Category, Message, Status, Suppression
from ..state import transition
from .feedback import receipts_apply_pending
from .suppression import suppression_add, suppression_explain, suppressions_blocking, unsubscribe_url_for

logger = logging.getLogger(__name__)


def claim_messages(message_ids: list[int], *, lease_seconds: int | None = None) -> list[Message]:
    """Take queued messages for sending: queued -> sending in one conditional UPDATE.

    Only rows still `queued` are taken, so a message cancelled a moment ago, or already taken by another worker
    running a duplicate job, is left alone. Each claim carries a fresh token that the result must match.
    """
    token = uuid.uuid4()
    now = timezone.now()
    lease = timedelta(seconds=lease_seconds or settings.RQ_QUEUES["default"]["DEFAULT_TIMEOUT"] + 60)
    claimed_ids = transition(
        message_ids,
        to_status=Status.SENDING,
        from_statuses=[Status.QUEUED],
        fields={"claim_token": token, "lease_expires_at": now + lease, "attempts": F("attempts") + 1},
    )
    if not claimed_ids:
        return []
    return list(Message.objects.filter(pk__in=claimed_ids, claim_token=token).order_by("pk"))


def to_outgoing(message: Message) -> OutgoingMessage:
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


def record_suppressed(message: Message, suppression: Suppression) -> str:
    """A claimed message whose recipient is on the suppression list ends `suppressed`, with the reason."""
    reason = suppression_explain(suppression)
    moved = transition(
        [message.pk],
        to_status=Status.SUPPRESSED,
        from_statuses=[Status.SENDING],
        extra_filter={"claim_token": message.claim_token},
        fields={"last_error_code": "suppressed", "last_error_message": reason, "lease_expires_at": None},
        code="suppressed",
        detail=reason,
        data={"suppression_id": suppression.pk, "reason": suppression.reason},
    )
    return Status.SUPPRESSED if moved else ""


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: SEND_RETRY_BACKOFF, then doubled each attempt, capped at an hour."""
    return timedelta(seconds=min(settings.SEND_RETRY_BACKOFF * (2 ** max(attempts - 1, 0)), 3600))


def record_result(message: Message, result: SendResult) -> str:
    """Write one send's outcome. Returns the status the message ended in (or "" if it was no longer ours)."""
    claim = {"claim_token": message.claim_token}
    if result.ok:
        moved = transition(
            [message.pk],
            to_status=Status.SENT,
            from_statuses=[Status.SENDING],
            extra_filter=claim,
            fields={
                "provider": result.provider,
                "provider_message_id": result.provider_message_id,
                "last_error_code": "",
                "last_error_message": "",
                "lease_expires_at": None,
            },
            detail=f"Accepted by {result.provider}"
            + (f" as {result.provider_message_id}" if result.provider_message_id else ""),
            data={"provider_status": result.provider_status} if result.provider_status else None,
        )
        if moved:
            return Status.SENT
        # A receipt from the provider got here first and moved the message on (see feedback.py). Keep the
        # provider's id all the same, so later receipts find the message.
        Message.objects.filter(pk=message.pk, claim_token=message.claim_token, provider_message_id="").update(
            provider=result.provider, provider_message_id=result.provider_message_id, lease_expires_at=None
        )
        return ""
    return record_failure(message, result.error, provider=result.provider)


def record_failure(message: Message, error: DeliveryError, *, provider: str) -> str:
    claim = {"claim_token": message.claim_token}
    error_fields = {
        "provider": provider,
        "last_error_code": error.code,
        "last_error_message": error.reason,
        "lease_expires_at": None,
    }
    if error.transient and message.attempts < settings.SEND_MAX_ATTEMPTS:
        send_at = timezone.now() + retry_delay(message.attempts)
        moved = transition(
            [message.pk],
            to_status=Status.SCHEDULED,
            from_statuses=[Status.SENDING],
            extra_filter=claim,
            fields={**error_fields, "send_at": send_at},
            code=error.code,
            detail=(
                f"Attempt {message.attempts} of {settings.SEND_MAX_ATTEMPTS} failed: {error.reason} "
                f"Retrying at {send_at:%H:%M:%S} UTC."
            ),
        )
        return Status.SCHEDULED if moved else ""
    why = error.reason
    if error.transient:
        why = f"Gave up after {message.attempts} attempts: {error.reason}"
    moved = transition(
        [message.pk],
        to_status=Status.FAILED,
        from_statuses=[Status.SENDING],
        extra_filter=claim,
        fields={**error_fields, "last_error_message": why},
        code=error.code,
        detail=why,
    )
    if moved and error.suppress:
        # The provider knows the recipient opted out (e.g. a STOP we never saw): remember it on our side too.
        suppression_add(
            channel=message.channel,
            address=message.recipient,
            reason=error.suppress,
            source=f"{provider.title()} error {error.code}",
            detail=why,
            message=message,
        )
    return Status.FAILED if moved else ""


def send_messages(message_ids: list[int]) -> dict[str, int]:
    """Send the given messages (those still queued) and record every outcome. Returns counts by final status."""
    messages = claim_messages(message_ids)
    counts: dict[str, int] = defaultdict(int)
    blocking = suppressions_blocking(messages)
    by_channel: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        if message.pk in blocking:
            counts[record_suppressed(message, blocking[message.pk])] += 1
        else:
            by_channel[message.channel].append(message)
    for channel, group in by_channel.items():
        try:
            backend = get_backend(channel)
        except Exception as error:  # misconfiguration: fail loudly on each message, with the reason
            logger.exception("No usable backend for %s", channel)
            failure = DeliveryError(f"The {channel} provider is not configured: {error}", code="configuration")
            for message in group:
                counts[record_failure(message, failure, provider="")] += 1
            continue
        results = backend.send_many([to_outgoing(m) for m in group], concurrency=settings.SEND_CONCURRENCY)
        for message, result in zip(group, results, strict=True):
            counts[record_result(message, result)] += 1
        # Receipts that arrived before we stored the provider's ids wait in the database; apply them now.
        receipts_apply_pending(
            provider=backend.provider_name,
            provider_message_ids=[r.provider_message_id for r in results if r.ok and r.provider_message_id],
        )
    counts.pop("", None)
    return dict(counts)


def fail_expired_leases() -> int:
    """Messages left in `sending` past their lease (the worker died mid-batch) fail with a reason to review.

    The provider may or may not have accepted them, so we never re-send blindly: a person decides, with the
    retry action. Returns how many were failed.
    """
    now = timezone.now()
    ids = list(
        Message.objects.filter(status=Status.SENDING, lease_expires_at__lt=now).values_list("pk", flat=True)[:5000]
    )
    reason = (
        "The worker stopped while sending this message; the provider may or may not have received it. "
        "Check the provider's logs, then retry it if it did not arrive."
    )
    moved = transition(
        ids,
        to_status=Status.FAILED,
        from_statuses=[Status.SENDING],
        fields={"last_error_code": "interrupted", "last_error_message": reason, "lease_expires_at": None},
        code="interrupted",
        detail=reason,
        extra_filter={"lease_expires_at__lt": now},
    )
    return len(moved)
