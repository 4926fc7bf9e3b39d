"""The console's queue monitor: each queue's depth and throughput, and the sends that fail grouped by reason, with
"retry these" and "cancel these" acting on the messages themselves (never on raw RQ jobs).

Two kinds of failing sends, each with the action that fits it:
- `failed`: given up on (a refusal, or attempts or deadline ran out). "Retry these" queues them again through
  deliveries' message_retry, as the message list's action does.
- `retrying`: a transient error put them back to `scheduled` for another attempt. "Cancel these" stops them through
  message_cancel before they go out again.

Groups are read through indexes only (failed: message_failed_at; retrying: message_pending_send_at, bounded by the
longest retry backoff) and acted on in steps of QUEUE_MONITOR_ACTION_BATCH messages, so a group of 50,000 is never
one long request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from analytics import selectors as analytics
from content.models import Channel
from deliveries.models import AuditEntry, Message, Status
from deliveries.services.messages import message_cancel, message_retry

from .now import CACHE_ERRORS, capped_count, queues_now
from .now import CACHE_KEY as NOW_CACHE_KEY

# The windows the monitor offers, by the value its form sends.
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_WINDOW = "24h"
FAILED = "failed"
RETRYING = "retrying"
KINDS = (FAILED, RETRYING)


@dataclass(frozen=True)
class FailureGroup:
    """The messages of one kind (failed or retrying), channel and error code within a window."""

    kind: str
    channel: str
    code: str
    window: str

    def messages(self, now: datetime) -> QuerySet[Message]:
        since = now - WINDOWS[self.window]
        if self.kind == FAILED:
            chosen = Message.objects.filter(status=Status.FAILED, failed_at__gte=since)
        else:
            chosen = retrying_messages(now)  # retrying now, whenever it began
        return chosen.filter(channel=self.channel, last_error_code=self.code)


@dataclass(frozen=True)
class GroupAction:
    name: str  # "retry" or "cancel"
    kind: str  # the kind of group it applies to
    permission: str
    service: Callable[..., bool]
    audit_action: str
    verb: str  # for people: "Retry", "Cancel"


ACTIONS = {
    "retry": GroupAction(
        "retry", FAILED, "deliveries.retry_message", message_retry, AuditEntry.Action.MESSAGE_RETRIED, "Retry"
    ),
    "cancel": GroupAction(
        "cancel", RETRYING, "deliveries.cancel_message", message_cancel, AuditEntry.Action.MESSAGE_CANCELLED, "Cancel"
    ),
}


def retrying_messages(now: datetime) -> QuerySet[Message]:
    """Messages back in `scheduled` after a transient error, due again within the longest backoff (a retry is
    never further away), so the scan stays within the scheduled index's near end."""
    horizon = now + timedelta(seconds=settings.SEND_RETRY_BACKOFF_MAX + 60)
    return Message.objects.filter(status=Status.SCHEDULED, send_at__lte=horizon, attempts__gt=0).exclude(
        last_error_code=""
    )


def window_parse(value: str | None) -> str:
    """The window a request asks for, or the default when it names none we offer."""
    return value if value in WINDOWS else DEFAULT_WINDOW


def failure_groups(*, window: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Messages that failed within the window and those retrying now, grouped by channel and error code, biggest
    groups first, with a readable reason (one of the group's error messages) and, for failed ones, when the latest
    failed, for retrying ones when the next attempt is due."""
    now = now or timezone.now()
    since = now - WINDOWS[window]
    sources: dict[str, tuple[QuerySet[Message], str]] = {
        FAILED: (Message.objects.filter(status=Status.FAILED, failed_at__gte=since), "failed_at"),
        RETRYING: (retrying_messages(now), "send_at"),
    }
    groups = []
    for kind, (messages, moment) in sources.items():
        rows = (
            messages.order_by()
            .values("channel", "last_error_code")
            .annotate(count=Count("pk"), reason=Max("last_error_message"), latest=Max(moment))
        )
        for row in rows:
            groups.append(
                {
                    "kind": kind,
                    "channel": row["channel"],
                    "code": row["last_error_code"],
                    "reason": row["reason"] or "No reason recorded.",
                    "count": row["count"],
                    "latest": row["latest"],
                    "action": "retry" if kind == FAILED else "cancel",
                }
            )
    return sorted(groups, key=lambda group: (-group["count"], group["kind"], group["channel"], group["code"]))


def held_groups() -> list[dict[str, Any]]:
    """Messages the cost guard held (a spend cap, a velocity limit), by channel and code, biggest first, with one of
    the reasons and when the oldest was created: read through the partial index message_held."""
    rows = (
        Message.objects.filter(status=Status.HELD)
        .order_by()
        .values("channel", "last_error_code")
        .annotate(count=Count("pk"), reason=Max("last_error_message"), oldest=Min("created_at"))
    )
    groups = [
        {
            "channel": row["channel"],
            "code": row["last_error_code"],
            "reason": row["reason"] or "No reason recorded.",
            "count": row["count"],
            "oldest": row["oldest"],
        }
        for row in rows
    ]
    return sorted(groups, key=lambda group: (-group["count"], group["channel"], group["code"]))


def monitor_snapshot(*, window: str) -> dict[str, Any]:
    """The monitor's page: queues with their depth and throughput, throughput per channel, and the failure groups of the
    window; kept DASHBOARD_CACHE_SECONDS in the shared cache per window."""
    key = _monitor_cache_key(window)
    try:
        cached = cache.get(key)
    except CACHE_ERRORS:
        cached = None
    if cached is not None:
        return cached
    now = timezone.now()
    snapshot = {
        "as_of": now,
        "window": window,
        "queues": [{**queue, **_throughput(now, priority=queue["name"])} for queue in queues_now(now)],
        "throughput": throughput_by_channel(now),
        "groups": failure_groups(window=window, now=now),
        "held": held_groups(),
    }
    with contextlib.suppress(*CACHE_ERRORS):
        cache.set(key, snapshot, timeout=settings.DASHBOARD_CACHE_SECONDS)
    return snapshot


def _monitor_cache_key(window: str) -> str:
    return f"tidings:console:queues:v3:{window}"


def monitor_forget() -> None:
    """Drop the cached figures of the monitor and the dashboard, so whoever just acted sees the outcome."""
    with contextlib.suppress(*CACHE_ERRORS):
        cache.delete_many([*(_monitor_cache_key(window) for window in WINDOWS), NOW_CACHE_KEY])


def throughput_by_channel(now: datetime) -> list[dict[str, Any]]:
    """Messages sent and failed per channel in the last 5 minutes and the last hour, from analytics' rollups."""
    return [{"channel": channel, **_throughput(now, channel=channel)} for channel in Channel.values]


def _throughput(now: datetime, *, channel: str | None = None, priority: str | None = None) -> dict[str, Any]:
    """Sent in the last 5 minutes and the last hour, per minute over the hour, and failed or undelivered in the
    hour: of one channel or of one queue (the messages of one priority)."""
    last_5m = analytics.outcomes_since(now - timedelta(minutes=5), channel=channel, priority=priority)
    last_1h = analytics.outcomes_since(now - timedelta(hours=1), channel=channel, priority=priority)
    return {
        "sent_5m": last_5m.get("sent", 0),
        "sent_1h": last_1h.get("sent", 0),
        "per_minute_1h": round(last_1h.get("sent", 0) / 60, 1),
        "failed_1h": last_1h.get("failed", 0) + last_1h.get("undelivered", 0),
    }


def group_count(group: FailureGroup, now: datetime | None = None) -> int:
    return capped_count(group.messages(now or timezone.now()), cap=10_000_000)


def group_act(
    *, group: FailureGroup, action: GroupAction, by: str, after: int = 0, limit: int | None = None
) -> tuple[list, int, int]:
    """Apply `action` to at most `limit` messages of the group with ids above `after` (oldest ids first), each
    through its service, which moves only those still in the state the action applies to. Returns (the messages it
    changed, how many it tried, the last id it tried); the caller audits the changed ones and passes that id as
    `after` to go on. By id, not by what is left in the group: a retried message that fails again at once is back
    in the group, and must not be retried a second time while others wait for their first."""
    limit = limit or settings.QUEUE_MONITOR_ACTION_BATCH
    batch = list(group.messages(timezone.now()).filter(pk__gt=after).order_by("pk")[:limit])
    changed = [message for message in batch if action.service(message=message, by=by)]
    return changed, len(batch), batch[-1].pk if batch else after
