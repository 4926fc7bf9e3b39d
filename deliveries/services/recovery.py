"""What the reconciler does about messages that a crash or the clock left behind.

- Past its deadline (`expires_at`) and still waiting: fail it, rather than send it late.
- Stuck in `sending` past its lease: its worker died during the provider call, so the provider may or may not have
  the message. It goes to `review` for a person, or is sent again on channels listed in RESEND_AMBIGUOUS_CHANNELS.

Both are single conditional UPDATEs, safe to run in several processes at once. (Messages stuck in `queued` without
a live job are re-queued by deliveries.services.dispatch.requeue_orphaned_messages.)
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.utils import timezone

from ..db.lookups import pk_among
from ..models import Message, Status
from ..state import transition

EXPIRING = [Status.SCHEDULED, Status.QUEUED, Status.HELD]
EXPIRED_REASON = "Too late: its deadline passed before it could be sent, so it was not sent."
INTERRUPTED_REASON = (
    "The worker stopped during the provider call (crash, kill or lost machine), so the provider may or may not "
    "have this message. Check the provider's logs, then resend it or mark it sent or failed."
)


def fail_expired_messages(*, message_ids: Sequence[int] | None = None, limit: int = 5000) -> int:
    """Fail waiting messages (scheduled, queued, or held by the cost guard: a one-time code is useless once late)
    whose deadline has passed. Returns how many."""
    now = timezone.now()
    waiting = Message.objects.filter(status__in=EXPIRING, expires_at__lt=now)
    if message_ids is not None:
        waiting = waiting.filter(pk_among(message_ids))
    ids = list(waiting.values_list("pk", flat=True)[:limit])
    moved = transition(
        ids,
        to_status=Status.FAILED,
        from_statuses=EXPIRING,
        extra_filter={"expires_at__lt": now},
        fields={"last_error_code": "expired", "last_error_message": EXPIRED_REASON},
        code="expired",
        detail=EXPIRED_REASON,
    )
    return len(moved)


def recover_expired_leases(*, limit: int = 5000) -> dict[str, int]:
    """Settle messages left in `sending` past their lease. Returns how many went to review and how many to resend."""
    now = timezone.now()
    rows = list(
        Message.objects.filter(status=Status.SENDING, lease_expires_at__lt=now).values_list("pk", "channel")[:limit]
    )
    resend_channels = set(settings.RESEND_AMBIGUOUS_CHANNELS)
    to_resend = [pk for pk, channel in rows if channel in resend_channels]
    to_review = [pk for pk, channel in rows if channel not in resend_channels]
    reviewed = transition(
        to_review,
        to_status=Status.REVIEW,
        from_statuses=[Status.SENDING],
        extra_filter={"lease_expires_at__lt": now},
        # The claim token stays: if the worker was only slow, its answer can still settle the message.
        fields={"last_error_code": "interrupted", "last_error_message": INTERRUPTED_REASON, "lease_expires_at": None},
        code="interrupted",
        detail=INTERRUPTED_REASON,
    )
    resent = transition(
        to_resend,
        to_status=Status.SCHEDULED,
        from_statuses=[Status.SENDING],
        extra_filter={"lease_expires_at__lt": now},
        fields={"send_at": now, "lease_expires_at": None, "claim_token": None},
        code="interrupted",
        detail=(
            "The worker stopped during the provider call; sending again, since RESEND_AMBIGUOUS_CHANNELS says a "
            "duplicate is harmless on this channel."
        ),
    )
    return {"review": len(reviewed), "resent": len(resent)}
