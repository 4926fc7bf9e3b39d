"""The worker's side: send a job's queued messages, one provider call per message, several calls at once.

For each message, in order (docs/reliability.md says why):

1. Past its deadline (`expires_at`)? It fails with that reason instead of going out late.
2. The provider's circuit breaker and send rate must allow a call now. If not, the message, and the job's other
   messages that the same pause or limit holds back, are deferred (queued -> scheduled) to the moment they will:
   no attempt is spent and the worker neither waits nor spins.
3. It is claimed (queued -> sending, attempts + 1, a fresh claim token and a lease) just before its provider call
   starts, so `sending` means exactly "the provider may have it". If the worker dies, the messages it had not
   reached are still `queued` (the reconciler queues them again) and only the calls in flight are in doubt.
4. The call runs in a thread pool, SEND_CONCURRENCY at a time; this thread records each outcome as soon as it
   returns: sent, a retry (sending -> scheduled with backoff and jitter), or failed with the provider's reason.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from ..backends import get_backend
from ..backends.base import BaseBackend, OutgoingMessage, SendResult
from ..circuit_breakers import ProviderBreaker, ProviderPaused
from ..exceptions import DeliveryError, TransientDeliveryError
from ..models import Category, Message, Status, Suppression
from ..rate_limits import SendRateLimiter, Wait
from ..state import transition
from .feedback import receipts_apply_pending
from .recovery import fail_expired_messages
from .suppression import suppression_add, suppression_explain, suppressions_blocking, unsubscribe_url_for

logger = logging.getLogger(__name__)

# When Redis cannot say whether the rate allows a call, look again this many seconds later.
RATE_UNKNOWN_WAIT_SECONDS = 1.0

# Set by SIGTERM during a job: claim nothing more, finish and record the calls in flight, return.
_stop_requested = threading.Event()


@contextlib.contextmanager
def stop_on_sigterm():
    """While a job runs, SIGTERM stops it after the provider calls in flight instead of killing it mid-call.

    RQ already lets the worker finish its job on SIGTERM (warm shutdown), but the job runs in a forked work horse
    that dies at once if it gets the signal too, as it does when the platform signals every process (systemd,
    Heroku, `kill` of the process group). Messages the job had not reached stay `queued` for the reconciler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def request_stop(signum, frame):
        _stop_requested.set()
        if callable(previous):  # in-process workers: RQ's own warm shutdown
            previous(signum, frame)

    signal.signal(signal.SIGTERM, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_requested.clear()


def max_attempts_for(channel: str) -> int:
    """SMS_MAX_ATTEMPTS / EMAIL_MAX_ATTEMPTS, or SEND_MAX_ATTEMPTS for a channel without its own."""
    return getattr(settings, f"{channel.upper()}_MAX_ATTEMPTS", None) or settings.SEND_MAX_ATTEMPTS


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with jitter: SEND_RETRY_BACKOFF doubled after each attempt, capped at
    SEND_RETRY_BACKOFF_MAX, of which the share SEND_RETRY_JITTER is drawn at random so a burst's retries spread."""
    ceiling = min(settings.SEND_RETRY_BACKOFF * (2 ** max(attempts - 1, 0)), settings.SEND_RETRY_BACKOFF_MAX)
    jitter = min(max(settings.SEND_RETRY_JITTER, 0.0), 1.0)
    return timedelta(seconds=ceiling * (1 - jitter * random.random()))  # noqa: S311 - spreading, not secrecy


def claim_messages(message_ids: list[int], *, provider: str = "", lease_seconds: float | None = None) -> list[Message]:
    """Take queued messages for their provider call: queued -> sending in one conditional UPDATE.

    Only rows still `queued` are taken, so a message cancelled a moment ago, or already taken by another worker
    running a duplicate job, is left alone. Each claim carries a fresh token that the result must match, and a
    lease: past it, the reconciler treats the call as interrupted.
    """
    token = uuid.uuid4()
    lease = timedelta(seconds=lease_seconds or settings.SEND_LEASE_SECONDS)
    claimed_ids = transition(
        message_ids,
        to_status=Status.SENDING,
        from_statuses=[Status.QUEUED],
        fields={"claim_token": token, "lease_expires_at": timezone.now() + lease, "attempts": F("attempts") + 1},
        detail=f"Handing to {provider}." if provider else "Handing to the provider.",
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
    """A queued message whose recipient is on the suppression list ends `suppressed`, with the reason.

    Checked just before the claim, so it is never handed to a provider and spends no attempt.
    """
    reason = suppression_explain(suppression)
    moved = transition(
        [message.pk],
        to_status=Status.SUPPRESSED,
        from_statuses=[Status.QUEUED],
        fields={"last_error_code": "suppressed", "last_error_message": reason},
        code="suppressed",
        detail=reason,
        data={"suppression_id": suppression.pk, "reason": suppression.reason},
    )
    return Status.SUPPRESSED if moved else ""


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _clock(moment: datetime) -> str:
    return f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d} UTC"


def record_result(message: Message, result: SendResult) -> str:
    """Write one provider call's outcome. Returns the status the message ended in ("" if it was no longer ours)."""
    if not result.ok:
        return record_failure(message, result.error, provider=result.provider)
    attempt, max_attempts = message.attempts, max_attempts_for(message.channel)
    accepted = f"Accepted by {result.provider}" + (
        f" as {result.provider_message_id}" if result.provider_message_id else ""
    )
    moved = transition(
        [message.pk],
        # From review too: the lease ran out while the call was slow, and here is its answer after all.
        to_status=Status.SENT,
        from_statuses=[Status.SENDING, Status.REVIEW],
        extra_filter={"claim_token": message.claim_token},
        fields={
            "provider": result.provider,
            "provider_message_id": result.provider_message_id,
            "last_error_code": "",
            "last_error_message": "",
            "lease_expires_at": None,
        },
        detail=f"Attempt {attempt} of {max_attempts}: {accepted}.",
        data={
            "attempt": attempt,
            "max_attempts": max_attempts,
            **({"provider_status": result.provider_status} if result.provider_status else {}),
        },
    )
    if moved:
        return Status.SENT
    # A receipt from the provider got here first and moved the message on (see feedback.py). Keep the
    # provider's id all the same, so later receipts find the message.
    Message.objects.filter(pk=message.pk, claim_token=message.claim_token, provider_message_id="").update(
        provider=result.provider, provider_message_id=result.provider_message_id, lease_expires_at=None
    )
    return ""


def record_failure(message: Message, error: DeliveryError, *, provider: str) -> str:
    """A failed provider call: retry later (transient, attempts left, still in time) or fail with the reason."""
    claim = {"claim_token": message.claim_token}
    attempt, max_attempts = message.attempts, max_attempts_for(message.channel)
    error_fields = {
        "provider": provider,
        "last_error_code": error.code,
        "last_error_message": error.reason,
        "lease_expires_at": None,
    }
    failed = f"Attempt {attempt} of {max_attempts} failed: {error.reason}"
    data = {"attempt": attempt, "max_attempts": max_attempts, "transient": error.transient}
    if error.transient and attempt < max_attempts:
        send_at = timezone.now() + retry_delay(attempt)
        if message.expires_at is None or send_at <= message.expires_at:
            moved = transition(
                [message.pk],
                to_status=Status.SCHEDULED,
                from_statuses=[Status.SENDING],
                extra_filter=claim,
                fields={**error_fields, "send_at": send_at},
                code=error.code,
                detail=f"{failed} Retrying at {_clock(send_at)}.",
                data={**data, "next": "retry", "retry_at": send_at.isoformat()},
            )
            return Status.SCHEDULED if moved else ""
        why = f"Too late for another try: {error.reason}"
        detail = (
            f"{failed} The next try ({_clock(send_at)}) would be past its deadline "
            f"({_clock(message.expires_at)}), so it is not sent."
        )
        next_step = "expired"
    elif error.transient:
        why = f"Gave up after {attempt} attempts: {error.reason}"
        detail = f"{failed} Gave up: no attempts left."
        next_step = "gave up"
    else:
        why = error.reason
        detail = f"{failed} Not retried: the provider will refuse it again."
        next_step = "none"
    moved = transition(
        [message.pk],
        to_status=Status.FAILED,
        from_statuses=[Status.SENDING],
        extra_filter=claim,
        fields={**error_fields, "last_error_message": why},
        code=error.code,
        detail=detail,
        data={**data, "next": next_step},
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


def record_not_attempted(message: Message, paused: ProviderPaused) -> str:
    """The breaker opened between the claim and the call: nothing was sent, so the attempt is given back."""
    until = _at(paused.until)
    moved = transition(
        [message.pk],
        to_status=Status.SCHEDULED,
        from_statuses=[Status.SENDING],
        extra_filter={"claim_token": message.claim_token},
        fields={"attempts": F("attempts") - 1, "send_at": until, "lease_expires_at": None, "claim_token": None},
        code="circuit_open",
        detail=f"Not sent: {paused.provider} is paused by its circuit breaker. Waiting until {_clock(until)}; "
        "no attempt spent.",
    )
    return Status.SCHEDULED if moved else ""


@dataclass
class Deferral:
    """Messages a pause or a rate limit holds back, and when to try each again."""

    code: str
    reason: str
    until: float
    slots: int = 0  # with a rate limit: how many fit in each window, to spread a long line over the next windows
    window: float = 0.0
    message_ids: list[int] = field(default_factory=list)

    def send_at_for(self, position: int) -> datetime:
        offset = (position // self.slots) * self.window if self.slots else 0.0
        return _at(self.until + offset)

    def apply(self) -> int:
        by_time: dict[datetime, list[int]] = defaultdict(list)
        for position, pk in enumerate(self.message_ids):
            by_time[self.send_at_for(position)].append(pk)
        moved = 0
        for send_at, ids in by_time.items():
            moved += len(
                transition(
                    ids,
                    to_status=Status.SCHEDULED,
                    from_statuses=[Status.QUEUED],
                    fields={"send_at": send_at},
                    code=self.code,
                    detail=f"{self.reason} Waiting until {_clock(send_at)}; no attempt spent.",
                )
            )
        return moved


class ProviderGate:
    """What stands between a message and its provider call: the provider's circuit breaker and its send rate."""

    def __init__(self, channel: str, provider: str):
        self.provider = provider
        self.breaker = ProviderBreaker(provider)
        self.limiter = SendRateLimiter(channel, provider)

    def capacity(self) -> int | None:
        """How many calls may start now (None: no limit), for the dispatcher to release no more messages than
        can go out: none while the breaker pauses the provider, one for its probe, else what the rate leaves."""
        status = self.breaker.status()
        if status.state == "open" and status.retry_at is not None and time.time() < status.retry_at:
            return 0
        if status.state in ("open", "half-open"):
            return 1
        return self.limiter.capacity()

    def admit(self, sender: str) -> tuple[Deferral | None, bool]:
        """(None, is_probe) when a call may start now and has taken its rate slot; (a Deferral, False) if not.

        A deferral for a sender's own limit holds back only that sender's messages (`Deferral.code` says which).
        """
        allowed, until, probe = self.breaker.admit()
        if not allowed:
            reason = f"{self.provider} is paused by its circuit breaker after repeated failures."
            return Deferral("circuit_open", reason, until), False
        if not self.limiter.enabled:
            return None, probe
        try:
            if self.limiter.acquire(sender):
                return None, probe
            limit_wait = self.limiter.wait(sender)
        except RedisError as error:
            logger.warning("Rate limiter unavailable for %s: %s", self.provider, error)
            reason = "The rate limiter could not be reached."
            deferral = Deferral("rate_unknown", reason, time.time() + RATE_UNKNOWN_WAIT_SECONDS)
        else:
            deferral = self._rate_deferral(sender, limit_wait)
        if probe:
            self.breaker.release_probe()
        return deferral, False

    def _rate_deferral(self, sender: str, limit_wait: Wait | None) -> Deferral:
        if limit_wait is None:  # a slot came back between the refusal and the question: try again at once
            return Deferral("rate_limited", f"Send rate of {self.provider} reached.", time.time())
        if limit_wait.per_sender:
            reason = f"Send rate {limit_wait.limit} of {self.provider} for {sender or 'the default sender'} reached."
            code = "sender_rate_limited"
        else:
            reason = f"Send rate {limit_wait.limit} of {self.provider} reached."
            code = "rate_limited"
        return Deferral(code, reason, limit_wait.until, limit_wait.slots, limit_wait.window)

    def call(self, backend: BaseBackend, message: OutgoingMessage, probe: bool) -> SendResult | ProviderPaused:
        """The provider call, under the breaker; runs in a pool thread and touches no database."""
        try:
            return self.breaker.call(backend.send_checked, message, probe=probe)
        except ProviderPaused as paused:
            return paused
        except DeliveryError as error:
            return SendResult(message_id=message.id, provider=backend.provider_name, error=error)
        except Exception as error:  # Redis trouble inside the breaker, say: the call may not have happened
            logger.exception("Unexpected error around the %s call for message %s", backend.provider_name, message.id)
            wrapped = TransientDeliveryError(f"Unexpected error: {error!r}", provider=backend.provider_name)
            return SendResult(message_id=message.id, provider=backend.provider_name, error=wrapped)


class _ChannelSender:
    """Sends one channel's share of a job (see the module docstring); counts outcomes by status."""

    def __init__(self, channel: str, backend: BaseBackend, counts: Counter):
        self.channel = channel
        self.backend = backend
        self.gate = ProviderGate(channel, backend.provider_name)
        self.counts = counts
        self.concurrency = max(settings.SEND_CONCURRENCY, 1)
        self.in_flight: dict[Future, Message] = {}
        self.accepted_ids: list[str] = []

    def run(self, rows: list[tuple[int, str]]) -> None:
        held_all: Deferral | None = None
        held_by_sender: dict[str, Deferral] = {}
        self.backend.open()
        try:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(rows)) or 1) as pool:
                for pk, sender in rows:
                    if _stop_requested.is_set():
                        logger.warning("Stopping on SIGTERM; unsent messages stay queued for the next worker")
                        break
                    self._collect(block=len(self.in_flight) >= self.concurrency)
                    held = held_all or held_by_sender.get(sender)
                    if held is not None:
                        held.message_ids.append(pk)
                        continue
                    deferral, probe = self.gate.admit(sender)
                    if deferral is not None:
                        deferral.message_ids.append(pk)
                        if deferral.code == "sender_rate_limited":
                            held_by_sender[sender] = deferral
                        else:
                            held_all = deferral
                        continue
                    claimed = claim_messages([pk], provider=self.gate.provider)
                    if not claimed:  # cancelled, or another worker's; its rate slot goes unused
                        if probe:
                            self.gate.breaker.release_probe()
                        continue
                    future = pool.submit(self.gate.call, self.backend, to_outgoing(claimed[0]), probe)
                    self.in_flight[future] = claimed[0]
        finally:
            # Every call that started gets its outcome recorded, whatever stopped the loop.
            while self.in_flight:
                self._collect(block=True)
            self.backend.close()
            # Receipts that arrived before we stored the provider's ids wait in the database; apply them now.
            receipts_apply_pending(provider=self.backend.provider_name, provider_message_ids=self.accepted_ids)
            for deferral in [held_all, *held_by_sender.values()]:
                if deferral is not None:
                    self.counts[Status.SCHEDULED] += deferral.apply()

    def _collect(self, *, block: bool) -> None:
        if not self.in_flight:
            return
        if block:
            done, _ = wait(self.in_flight, return_when=FIRST_COMPLETED)
        else:
            done = {future for future in self.in_flight if future.done()}
        for future in done:
            message = self.in_flight.pop(future)
            outcome = future.result()
            if isinstance(outcome, ProviderPaused):
                self.counts[record_not_attempted(message, outcome)] += 1
            else:
                self.counts[record_result(message, outcome)] += 1
                if outcome.ok and outcome.provider_message_id:
                    self.accepted_ids.append(outcome.provider_message_id)


def send_messages(message_ids: list[int]) -> dict[str, int]:
    """Send the given messages (those still queued) and record every outcome. Returns counts by status."""
    counts: Counter = Counter()
    counts[Status.FAILED] += fail_expired_messages(message_ids=message_ids)
    rows = list(
        Message.objects.filter(pk__in=message_ids, status=Status.QUEUED)
        .only("pk", "channel", "sender", "recipient", "category")
        .order_by("pk")
    )
    # One suppression lookup for the whole job: opt-outs that arrived after queueing are still honoured.
    blocking = suppressions_blocking(rows)
    by_channel: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for message in rows:
        if message.pk in blocking:
            counts[record_suppressed(message, blocking[message.pk])] += 1
        else:
            by_channel[message.channel].append((message.pk, message.sender))
    with stop_on_sigterm():
        for channel, channel_rows in by_channel.items():
            if _stop_requested.is_set():
                break
            try:
                backend = get_backend(channel)
            except Exception as error:  # misconfiguration: fail loudly on each message, with the reason
                logger.exception("No usable backend for %s", channel)
                failure = DeliveryError(f"The {channel} provider is not configured: {error}", code="configuration")
                for message in claim_messages([pk for pk, _ in channel_rows]):
                    counts[record_failure(message, failure, provider="")] += 1
                continue
            _ChannelSender(channel, backend, counts).run(channel_rows)
    counts.pop("", None)
    return {status: count for status, count in counts.items() if count}
