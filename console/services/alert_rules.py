"""The alert rules: each reads one figure and says whether its alert should be firing, with the figure and the
next step in words an operator can act on.

A rule only reads. Whether that starts or ends an alert, and who is told, is console/services/alerts.py's. A rule
that cannot read its figure (Redis down for the worker count) raises: its alert keeps the state it had, and the
`redis_unreachable` rule says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import django_rq
from django.conf import settings
from django.db.models import Count, Min

from content.models import Channel
from deliveries.health import dispatcher_status, providers_status, redis_location, workers_status
from deliveries.models import Message, Status
from deliveries.webhooks.signature_failures import signature_failures_since

WINDOW_MINUTES = 5  # the failure rate's and the signature failures' window


@dataclass(frozen=True)
class Finding:
    """What one rule saw: `firing` decides the alert's state, `detail` is the figure, `next_step` what to do."""

    key: str
    title: str
    firing: bool
    detail: str
    next_step: str = ""


def failure_rate(now: datetime) -> list[Finding]:
    """Failed and undelivered messages over the last 5 minutes' sends (a send ends `sent` or `failed`; an
    undelivered message was sent first), once there were ALERT_FAILURE_MIN_SENDS sends: one failure of one send
    is not 100 %."""
    from analytics.selectors import outcomes_since

    outcomes = outcomes_since(now - timedelta(minutes=WINDOW_MINUTES))
    sends = outcomes.get("sent", 0) + outcomes.get("failed", 0)
    failures = outcomes.get("failed", 0) + outcomes.get("undelivered", 0)
    threshold, minimum = settings.ALERT_FAILURE_RATE, settings.ALERT_FAILURE_MIN_SENDS
    rate = min(failures / sends, 1.0) if sends else 0.0
    detail = (
        f"{rate:.0%} of the last {WINDOW_MINUTES} minutes' {sends} sends failed or were undelivered "
        f"(alert at {threshold:.0%} of at least {minimum} sends)"
    )
    return [
        Finding(
            key="failure_rate",
            title="Failure rate",
            firing=sends >= minimum and rate >= threshold,
            detail=detail,
            next_step=(
                "Filter the message list by Failed and Undelivered to see the providers' reasons; check the "
                "provider's status page and its credentials."
            ),
        )
    ]


def oldest_waiting(now: datetime) -> list[Finding]:
    """The oldest message queued for a worker, by when it was queued (the partial index message_queued_at)."""
    oldest = Message.objects.filter(status=Status.QUEUED).aggregate(at=Min("queued_at"))["at"]
    minutes = (now - oldest).total_seconds() / 60 if oldest else 0.0
    limit = settings.ALERT_OLDEST_WAITING_MINUTES
    detail = (
        f"the oldest queued message has waited {minutes:.0f} minutes (alert after {limit:g})"
        if oldest
        else "no message is waiting for a worker"
    )
    return [
        Finding(
            key="oldest_waiting",
            title="Messages waiting",
            firing=minutes > limit,
            detail=detail,
            next_step=(
                "Check that workers run and are not stuck (the dashboard's workers, /health/ready); start more "
                "with manage.py run_worker; a provider paused by its breaker or a rate limit also holds them."
            ),
        )
    ]


def no_worker(now: datetime) -> list[Finding]:
    workers = workers_status()
    if "error" in workers:
        raise ConnectionError(workers["error"])
    count = workers["count"]
    return [
        Finding(
            key="no_worker",
            title="No live worker",
            firing=count == 0,
            detail=f"{count} worker(s) alive" if count else "no worker is alive: nothing is being sent",
            next_step="Start a worker (manage.py run_worker) and look at the last worker's log for why it stopped.",
        )
    ]


def dispatcher_silent(now: datetime) -> list[Finding]:
    status = dispatcher_status(now.timestamp())
    if "error" in status:
        raise ConnectionError(status["error"])
    age = status["last_beat_age_seconds"]
    detail = (
        f"{status['alive']} dispatcher(s) beating"
        if status["ok"]
        else (
            "no dispatcher has ever beaten"
            if age is None
            else f"the last dispatcher beat was {age:.0f} s ago (limit {status['max_age_seconds']:g} s)"
        )
    )
    return [
        Finding(
            key="dispatcher_silent",
            title="Dispatcher silent",
            firing=not status["ok"],
            detail=detail,
            next_step=(
                "Start manage.py run_dispatcher (or restart a hung one): until then scheduled messages, campaigns "
                "and the reconciler wait."
            ),
        )
    ]


def breakers_open(now: datetime) -> list[Finding]:
    """One alert per channel, so a second provider pausing while the first is paused is news too."""
    providers = providers_status()["providers"]
    findings = []
    for channel in Channel.values:
        entry = providers.get(channel, {})
        breaker = entry.get("breaker", {})
        state = breaker.get("state", "unknown")
        if "error" not in entry and state == "unknown":
            # The breaker's state could not be read (Redis down): no figure, so the alert stays as it was;
            # redis_unreachable says what is wrong.
            raise ConnectionError(f"the {channel} provider's circuit breaker cannot be read")
        if "error" in entry:
            detail = f"{channel}: the provider cannot be loaded ({entry['error']})"
        else:
            detail = f"{channel} through {entry.get('provider', '?')}: circuit breaker {state}"
        findings.append(
            Finding(
                key=f"breaker_open:{channel}",
                title=f"Provider paused ({channel})",
                firing=not entry.get("ok", False),
                detail=detail,
                next_step=(
                    "Its messages wait without spending attempts. Check the provider's status page and the "
                    "failed sends' reasons; the breaker tries the provider again by itself."
                ),
            )
        )
    return findings


def redis_unreachable(now: datetime) -> list[Finding]:
    try:
        django_rq.get_connection("default").ping()
        detail, firing = "Redis answers", False
    except Exception as error:  # any failure to answer is the news
        detail, firing = f"Redis does not answer at {redis_location()}: {error}", True
    return [
        Finding(
            key="redis_unreachable",
            title="Redis unreachable",
            firing=firing,
            detail=detail,
            next_step=(
                "Messages are still stored, and queued once Redis is back; start or fix Redis. Rules that read "
                "Redis keep their last state meanwhile."
            ),
        )
    ]


def redis_memory(now: datetime) -> list[Finding]:
    info = django_rq.get_connection("default").info("memory")
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    threshold = settings.ALERT_REDIS_MEMORY
    share = used / limit if limit else 0.0
    detail = (
        f"Redis uses {used / 2**20:.0f} MB of its {limit / 2**20:.0f} MB maxmemory ({share:.0%}; alert at "
        f"{threshold:.0%})"
        if limit
        else f"Redis uses {used / 2**20:.0f} MB and has no maxmemory limit (nothing to compare)"
    )
    return [
        Finding(
            key="redis_memory",
            title="Redis memory",
            firing=bool(limit) and share >= threshold,
            detail=detail,
            next_step=(
                "Look for a backlog of jobs (the queues' depths) and finished jobs kept too long; raise maxmemory. "
                "A full Redis refuses new jobs (the reconciler queues them later)."
            ),
        )
    ]


def webhook_signature_failures(now: datetime) -> list[Finding]:
    count = signature_failures_since(minutes=WINDOW_MINUTES, now=now.timestamp())
    threshold = settings.ALERT_WEBHOOK_SIGNATURE_FAILURES
    return [
        Finding(
            key="webhook_signature_failures",
            title="Webhook signature failures",
            firing=count >= threshold,
            detail=(
                f"{count} webhook request(s) refused for their signature in the last {WINDOW_MINUTES} minutes "
                f"(alert at {threshold})"
            ),
            next_step=(
                "Check that TWILIO_AUTH_TOKEN, MESSENGER_APP_SECRET and ANYMAIL_WEBHOOK_SECRET match the "
                "providers' (a secret rotated on one side only) and PUBLIC_BASE_URL; the web log names each refusal."
            ),
        )
    ]


def messages_held(now: datetime) -> list[Finding]:
    """Messages the cost guard held (a spend cap, a velocity limit: any `held:` code), by code, through the partial
    index message_held."""
    counts = dict(
        Message.objects.filter(status=Status.HELD)
        .order_by()
        .values_list("last_error_code")
        .annotate(count=Count("pk"))
        .values_list("last_error_code", "count")
    )
    total = sum(counts.values())
    by_code = ", ".join(f"{count} {code or 'without a code'}" for code, count in sorted(counts.items()))
    return [
        Finding(
            key="messages_held",
            title="Messages held by the guard",
            firing=total > 0,
            detail=f"{total} message(s) held: {by_code}" if total else "no message is held",
            next_step=(
                "See why on their timelines (the queue monitor lists them by code). Release them in the admin's "
                "message list (Release action) or with manage.py release_held, raise the spend cap under Cost guard "
                "→ Spend caps, or cancel them."
            ),
        )
    ]


Rule = Callable[[datetime], list[Finding]]

RULES: list[Rule] = [
    failure_rate,
    oldest_waiting,
    no_worker,
    dispatcher_silent,
    breakers_open,
    redis_unreachable,
    redis_memory,
    webhook_signature_failures,
    messages_held,
]
