"""The worker's side: send a job's queued messages, one provider call per message, many calls at once.

For each message, in order (docs/reliability.md says why; docs/performance.md says how it stays cheap):

1. Past its deadline (`expires_at`)? It fails with that reason instead of going out late.
2. The provider's circuit breaker and send rate must allow a call now. If not, the message, and the job's other
   messages that the same pause or limit holds back, are deferred (queued -> scheduled) to the moment they will:
   no attempt is spent and the worker neither waits nor spins. The breaker is asked once per wave of claims,
   the rate limiter (when one is set) once per message.
3. It is claimed (queued -> sending, attempts + 1, a fresh claim token and a lease) just before its provider call
   starts, in waves of at most the free call slots (SEND_CONCURRENCY in all), one UPDATE per wave. So `sending`
   means exactly "the provider may have it": if the worker dies, the messages it had not reached are still
   `queued` (the reconciler queues them again) and only the calls in flight are in doubt.
4. The calls run beside this thread's work: on libcurl's multi interface for backends with an async client
   (Twilio), driven from this thread between its writes, in a thread pool for the others. This thread records
   the outcomes as they come back, a group at a time: the accepted ones in one UPDATE that writes their events
   too, sent with the next wave's claim in one round trip and one commit on PostgreSQL (the slots they free are
   the ones it claims); a retry (sending -> scheduled with backoff and jitter) or a failure with the provider's
   reason one by one.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from ..backends import get_backend
from ..backends.base import BaseBackend, OutgoingMessage, SendResult
from ..backends.curl import CallDriver
from ..circuit_breakers import ProviderBreaker
from ..db.lookups import among, pk_among
from ..exceptions import DeliveryError, TransientDeliveryError
from ..models import Category, Message, Status, Suppression
from ..rate_limits import SendRateLimiter, Wait
from ..state import transition, transitions_together
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
)


def claim_messages(message_ids: list[int], *, provider: str = "", lease_seconds: float | None = None) -> list[Message]:
    """Take queued messages for their provider call: queued -> sending in one conditional UPDATE.

    Only rows still `queued` are taken, so a message cancelled a moment ago, or already taken by another worker
    running a duplicate job, is left alone. Each claim carries a fresh token that the result must match, and a
    lease: past it, the reconciler treats the call as interrupted.
    """
    return sorted(transition(**_claim_call(message_ids, provider, lease_seconds)), key=lambda message: message.pk)


def _claim_call(message_ids: list[int], provider: str, lease_seconds: float | None = None) -> dict[str, Any]:
    """claim_messages' transition (its arguments)."""
    token = uuid.uuid4()
    lease = timedelta(seconds=lease_seconds or settings.SEND_LEASE_SECONDS)
    # The UPDATE returns what the call and its record need (only that: the other columns are half the cost of
    # loading a row), so the claim is one statement and its events.
    return {
        "message_ids": message_ids,
        "to_status": Status.SENDING,
        "from_statuses": [Status.QUEUED],
        "fields": {"claim_token": token, "lease_expires_at": timezone.now() + lease, "attempts": F("attempts") + 1},
        "detail": f"Handing to {provider}." if provider else "Handing to the provider.",
        "returning": SEND_FIELDS,
    }


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


def record_suppressed(message: Message | QueuedRow, suppression: Suppression) -> str:
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
    return Status.SENT if record_accepted([(message, result)]) else ""


def record_accepted(
    accepted: list[tuple[Message, SendResult]], *, waiting_parents: set[int] | None = None
) -> list[int]:
    """Write calls one provider accepted: sending -> sent with the provider's id, one UPDATE for all of them (each
    row gets its own id through `per_row`) and one INSERT for their timeline events. Returns the ids that moved.

    `waiting_parents`: the messages known to have dependents waiting (None: unknown); for a group with none of
    them, the dependents lookup is skipped."""
    if not accepted:
        return []
    return _accepted_recorded(accepted, transition(**_record_accepted_call(accepted, waiting_parents)))


def record_accepted_and_claim(
    accepted: list[tuple[Message, SendResult]],
    claim_ids: list[int],
    *,
    provider: str = "",
    waiting_parents: set[int] | None = None,
) -> tuple[list[int], list[Message]]:
    """record_accepted, then claim_messages, in one round trip to PostgreSQL (state.transitions_together):
    the call slots the recorded messages free are claimed again in the same commit, so a worker never has more
    messages `sending` than slots, and a slot waits for one round trip between calls instead of two. Returns
    what each returns."""
    calls = []
    if accepted:
        calls.append(_record_accepted_call(accepted, waiting_parents))
    if claim_ids:
        calls.append(_claim_call(claim_ids, provider))
    results = transitions_together(*calls)
    moved = _accepted_recorded(accepted, results[0]) if accepted else []
    claimed = sorted(results[-1], key=lambda message: message.pk) if claim_ids else []
    return moved, claimed


def _record_accepted_call(
    accepted: list[tuple[Message, SendResult]], waiting_parents: set[int] | None
) -> dict[str, Any]:
    """record_accepted's transition (its arguments)."""
    provider = accepted[0][1].provider
    events = {}
    for message, result in accepted:
        attempt, max_attempts = message.attempts, max_attempts_for(message.channel)
        said = f"Accepted by {result.provider}" + (
            f" as {result.provider_message_id}" if result.provider_message_id else ""
        )
        data = {"attempt": attempt, "max_attempts": max_attempts}
        if result.provider_status:
            data["provider_status"] = result.provider_status
        events[message.pk] = (f"Attempt {attempt} of {max_attempts}: {said}.", data)
    return {
        "message_ids": list(events),
        # From review too: the lease ran out while the call was slow, and here is its answer after all.
        "to_status": Status.SENT,
        "from_statuses": [Status.SENDING, Status.REVIEW],
        # Each claim (a wave) has its own token: a row matches only if one of ours still holds it.
        "extra_filter": {"claim_token__in": {message.claim_token for message, _ in accepted}},
        "fields": {
            "provider": provider,
            "last_error_code": "",
            "last_error_message": "",
            "lease_expires_at": None,
        },
        "events_by_id": events,
        "per_row": {"provider_message_id": {message.pk: result.provider_message_id for message, result in accepted}},
        "settle_dependents": waiting_parents is None or any(message.pk in waiting_parents for message, _ in accepted),
    }


def _accepted_recorded(accepted: list[tuple[Message, SendResult]], moved: list[int]) -> list[int]:
    """After record_accepted's transition: the ids it moved, and the provider's ids kept on those it did not."""
    if len(moved) < len(accepted):
        # A receipt from the provider got here first and moved the message on (see feedback.py). Keep the
        # provider's id all the same, so later receipts find the message.
        moved_set = set(moved)
        for message, result in accepted:
            if message.pk not in moved_set:
                Message.objects.filter(pk=message.pk, claim_token=message.claim_token, provider_message_id="").update(
                    provider=result.provider, provider_message_id=result.provider_message_id, lease_expires_at=None
                )
    return moved


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

    def admit_wave(self) -> tuple[Deferral | None, bool]:
        """May a wave of calls start? (None, False): yes, all of it. (None, True): only one, as the breaker's probe.
        (a Deferral, False): none, until the breaker's pause ends."""
        allowed, until, probe = self.breaker.admit()
        if not allowed:
            reason = f"{self.provider} is paused by its circuit breaker after repeated failures."
            return Deferral("circuit_open", reason, until), False
        return None, probe

    def admit_rate(self, sender: str) -> Deferral | None:
        """Take a slot of the send rate for one call (None), or say until when the sender must wait (a Deferral;
        its code says whether the limit is the sender's own or the whole provider's)."""
        if not self.limiter.enabled:
            return None
        try:
            if self.limiter.acquire(sender):
                return None
            limit_wait = self.limiter.wait(sender)
        except RedisError as error:
            logger.warning("Rate limiter unavailable for %s: %s", self.provider, error)
            reason = "The rate limiter could not be reached."
            return Deferral("rate_unknown", reason, time.time() + RATE_UNKNOWN_WAIT_SECONDS)
        return self._rate_deferral(sender, limit_wait)

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


class CallPool:
    """Runs provider calls beside the recording thread's work; their results come back through `results`.

    A backend with an async client (`supports_async`) has its calls run by a CallDriver on libcurl's multi
    interface in this same thread: hundreds in flight for the CPU of a few, and no hand-over between threads at
    all; responses that arrive while the thread writes to the database wait in their sockets. The others get a
    thread pool (at most SEND_THREADS threads), whose results come back through a queue. Nothing here touches
    the database.
    """

    def __init__(self, backend: BaseBackend, size: int):
        self.backend = backend
        self.size = size
        self.driver: CallDriver | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.done: queue.SimpleQueue[tuple[Any, SendResult]] = queue.SimpleQueue()

    def __enter__(self) -> CallPool:
        self.backend.open()
        if self.backend.supports_async:
            self.driver = CallDriver(self.size)
        else:
            self.executor = ThreadPoolExecutor(max_workers=min(self.size, settings.SEND_THREADS))
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self.driver is not None:
                self.driver.close()
            else:
                self.executor.shutdown(wait=True)
        finally:
            self.backend.close()

    def start(self, calls: list[tuple[Any, OutgoingMessage]]) -> None:
        """Start a call for each (key, message); each result comes back from `results` as (key, result)."""
        if not calls:
            return
        if self.driver is not None:
            for key, message in calls:
                self.driver.start(key, self._call_async(message))
            self.driver.send()
        else:
            for key, message in calls:
                self.executor.submit(self._call, key, message)

    def results(self, timeout: float | None = None) -> list[tuple[Any, SendResult]]:
        """Wait for a call to finish, then take every result that has come back (never waiting for more)."""
        if self.driver is not None:
            return self.driver.finished(timeout)
        try:
            finished = [self.done.get(timeout=timeout)]
        except queue.Empty:
            return []
        with contextlib.suppress(queue.Empty):
            while True:
                finished.append(self.done.get_nowait())
        return finished

    def _call(self, key: Any, message: OutgoingMessage) -> None:
        try:
            result = self.backend.send(message)
        except DeliveryError as error:
            result = SendResult(message_id=message.id, provider=self.backend.provider_name, error=error)
        except Exception as error:  # a bug or an unforeseen library error: keep the batch going, retry later
            result = self._unexpected(message, error)
        self.done.put((key, result))

    async def _call_async(self, message: OutgoingMessage) -> SendResult:
        try:
            return await self.backend.send_async(message)
        except DeliveryError as error:
            return SendResult(message_id=message.id, provider=self.backend.provider_name, error=error)
        except Exception as error:  # a bug or an unforeseen library error: keep the batch going, retry later
            return self._unexpected(message, error)

    def _unexpected(self, message: OutgoingMessage, error: Exception) -> SendResult:
        logger.exception("Unexpected error sending message %s through %s", message.id, self.backend.provider_name)
        wrapped = TransientDeliveryError(f"Unexpected error: {error!r}", provider=self.backend.provider_name)
        return SendResult(message_id=message.id, provider=self.backend.provider_name, error=wrapped)


class _ChannelSender:
    """Sends one channel's share of a job (see the module docstring); counts outcomes by status."""

    def __init__(
        self,
        channel: str,
        backend: BaseBackend,
        counts: Counter,
        waiting_parents: set[int],
        more: Callable[[str], tuple[list[tuple[int, str]], float | None]] | None = None,
    ):
        self.channel = channel
        # More of this channel's messages to send once these have all started (taken over from waiting jobs),
        # and when to ask for them (epoch seconds): a job held for its time may be due in a moment.
        self.more = more
        self.ask_at = 0.0
        self.waiting_parents = waiting_parents
        self.backend = backend
        self.gate = ProviderGate(channel, backend.provider_name)
        self.counts = counts
        self.concurrency = max(settings.SEND_CONCURRENCY, 1)
        # Claim when at least this many call slots are free: a wave's claim is one UPDATE, whatever its size, but
        # slots left waiting for a wave send nothing. Since a slot frees only once its outcome is written, the
        # smallest waves did best (2,800/s at 2 of 100 slots, 2,700 at 10, 2,600 at 25: performance-log.md, item 27).
        self.wave_size = max(self.concurrency // 50, 1)
        self.in_flight: dict[int, tuple[Message, bool]] = {}  # by message id: a job names a message once
        # Calls the provider accepted whose outcome is not written yet: written with the next claim, in its round
        # trip, or alone before this loop waits, takes more or ends (_write_outcomes).
        self.unwritten: list[tuple[Message, SendResult]] = []
        self.accepted_ids: list[str] = []
        self.held_all: Deferral | None = None
        self.held_by_sender: dict[str, Deferral] = {}

    def run(self, rows: list[tuple[int, str]], *, not_before: float | None = None) -> None:
        pending = deque(rows)
        try:
            pool_size = self.concurrency if self.more is not None else min(self.concurrency, len(rows)) or 1
            with CallPool(self.backend, pool_size) as pool:
                early = not_before - time.time() if not_before is not None else 0.0
                if early > 0:
                    time.sleep(early)
                    # What expired while it waited fails as expired (the claim takes only rows still queued).
                    self.counts[Status.FAILED] += fail_expired_messages(message_ids=[pk for pk, _ in rows])
                try:
                    while True:
                        if pending and _stop_requested.is_set():
                            logger.warning("Stopping on SIGTERM; unsent messages stay queued for the next worker")
                            pending.clear()
                        if not pending and self.more is not None and time.time() >= self.ask_at:
                            self._write_outcomes()
                            self._take_more(pending)
                        if not (pending or self.in_flight):
                            if self.more is None:
                                break
                            self._write_outcomes()
                            time.sleep(max(self.ask_at - time.time(), 0))  # a held job due in a moment
                            continue
                        self._refill(pool, pending)
                        self._write_outcomes()  # what no claim took along: written before waiting for answers
                        # Waiting for a held job to come due: no waiting for answers past that.
                        wait = max(self.ask_at - time.time(), 0) if self.more is not None and not pending else None
                        # A slot is free again once its outcome is written, not when its answer arrives: until
                        # then the message is still `sending`, in doubt if this process dies, and at most
                        # SEND_CONCURRENCY messages may be (docs/reliability.md).
                        self._record(self._finished(pool, timeout=wait))
                finally:
                    # Every call that started gets its outcome recorded, whatever stopped the loop.
                    while self.in_flight:
                        self._record(self._finished(pool))
                    self._write_outcomes()
        finally:
            self._apply_early_receipts()
            for deferral in [self.held_all, *self.held_by_sender.values()]:
                if deferral is not None:
                    self.counts[Status.SCHEDULED] += deferral.apply()

    def _take_more(self, pending: deque) -> None:
        """All the messages so far have started their calls: take the next ones now, while the last calls are in
        flight, so that the call slots never drain between jobs. Receipts for those sent are applied first."""
        if _stop_requested.is_set() or self.held_all is not None:
            # Stopping; or the provider is paused or at its rate: whatever it took would only be deferred, and
            # held in this process until it ends. The dispatcher releases them when they can go.
            self.more = None
            return
        self._apply_early_receipts()
        more, ask_again_at = self.more(self.channel)
        pending.extend(more)
        if not more:
            if ask_again_at is None:
                self.more = None
            else:
                self.ask_at = ask_again_at

    def _apply_early_receipts(self) -> None:
        # Receipts that arrived before we stored the provider's ids wait in the database; apply them now.
        receipts_apply_pending(provider=self.backend.provider_name, provider_message_ids=self.accepted_ids)
        self.accepted_ids = []

    def _refill(self, pool: CallPool, pending: deque) -> None:
        """Start a wave when enough call slots are free (or none is busy): a wave's claim is one UPDATE."""
        free = self.concurrency - len(self.in_flight)
        if pending and free > 0 and (not self.in_flight or free >= min(self.wave_size, len(pending))):
            self._start_wave(pool, pending, free)

    def _hold(self, pk: int, sender: str) -> bool:
        """Put the message with a deferral already holding it back (its sender's, or everyone's)."""
        held = self.held_all or self.held_by_sender.get(sender)
        if held is None:
            return False
        held.message_ids.append(pk)
        return True

    def _start_wave(self, pool: CallPool, pending: deque, free: int) -> None:
        """Admit, claim and start the calls of up to `free` pending messages."""
        wave: list[tuple[int, str]] = []
        while pending and len(wave) < free:
            pk, sender = pending.popleft()
            if not self._hold(pk, sender):
                wave.append((pk, sender))
        if not wave:
            return
        deferral, probe = self.gate.admit_wave()
        if deferral is not None:
            self.held_all = deferral
            deferral.message_ids.extend(pk for pk, _ in wave)
            return
        if probe:  # one call tests the provider; the rest wait for its answer (the next wave sees it pending)
            pending.extendleft(reversed(wave[1:]))
            wave = wave[:1]
        admitted = []
        for pk, sender in wave:
            if self._hold(pk, sender):
                continue
            rate_deferral = self.gate.admit_rate(sender)
            if rate_deferral is None:
                admitted.append(pk)
            elif rate_deferral.code == "sender_rate_limited":
                rate_deferral.message_ids.append(pk)
                self.held_by_sender[sender] = rate_deferral
            else:
                rate_deferral.message_ids.append(pk)
                self.held_all = rate_deferral
        claimed = self._write_outcomes(admitted)
        if probe and not claimed:  # cancelled, or another worker's: nobody tests the provider after all
            self.gate.breaker.release_probe()
        for message in claimed:
            self.in_flight[message.pk] = (message, probe)
        pool.start([(message.pk, to_outgoing(message)) for message in claimed])

    def _write_outcomes(self, claim_ids: list[int] | None = None) -> list[Message]:
        """Write the accepted calls' outcomes and claim `claim_ids` (a wave, for slots free once those are
        written), in one round trip; returns the claimed messages."""
        accepted, self.unwritten = self.unwritten, []
        if not accepted and not claim_ids:
            return []
        moved, claimed = record_accepted_and_claim(
            accepted, claim_ids or [], provider=self.gate.provider, waiting_parents=self.waiting_parents
        )
        self.counts[Status.SENT] += len(moved)
        self.accepted_ids += [result.provider_message_id for _, result in accepted if result.provider_message_id]
        return claimed

    def _finished(self, pool: CallPool, timeout: float | None = None) -> list[tuple[Message, bool, SendResult]]:
        """Wait for a call to come back (at most `timeout` seconds), then take every call that has: (message, was
        it the probe, result). No waiting for more: the writes of the previous group take long enough for the next
        one to gather."""
        if not self.in_flight:
            return []
        return [(*self.in_flight.pop(key), result) for key, result in pool.results(timeout)]

    def _record(self, finished: list[tuple[Message, bool, SendResult]]) -> None:
        """Take the outcomes: the failures written now, one by one with their reasons; the accepted ones kept for
        _write_outcomes, which writes them together with the next claim."""
        if not finished:
            return
        self.gate.breaker.record([result.error for _, _, result in finished])
        if any(probe for _, probe, _ in finished):
            self.gate.breaker.release_probe()
        # The accepted ones are written with the next claim (_write_outcomes); their slots are free from then.
        self.unwritten += [(message, result) for message, _, result in finished if result.ok]
        for message, _, result in finished:
            if not result.ok:
                self.counts[record_failure(message, result.error, provider=result.provider)] += 1


def send_messages(
    message_ids: list[int],
    *,
    more: Callable[[], tuple[list[int], float | None]] | None = None,
    not_before: float | None = None,
) -> dict[str, int]:
    """Send the given messages (those still queued) and record every outcome. Returns counts by status.

    With `not_before` (epoch seconds), no call starts before then. Everything up to the first claim is done
    first (reading the rows, the database connection of a new work horse, the backend and its call pool: 50 ms
    on the benchmark machine), so that the first calls start when it comes and not 50 ms later; messages that
    expire during the wait still fail as expired.

    `more()`, when given, returns further message ids to send the same way (the send jobs waiting behind this
    one, taken over: deliveries.jobs), with, when it has none now, when to ask again (epoch seconds) or None for
    never. The last channel sent asks once every message so far has started its call, and again each time, as
    long as what it gets is all of its own channel: another channel's messages are sent after it, and then no
    more are taken.
    """
    counts: Counter = Counter()
    # Which of these messages have others waiting for them, asked once per lot rather than after every send.
    waiting_parents: set[int] = set()
    by_channel = _sendable_by_channel(message_ids, counts, waiting_parents)
    feeding = more is not None

    def more_of(channel: str) -> tuple[list[tuple[int, str]], float | None]:
        nonlocal feeding
        while feeding:
            ids, ask_again_at = more()
            if not ids:
                feeding = ask_again_at is not None
                return [], ask_again_at
            fresh = _sendable_by_channel(ids, counts, waiting_parents)
            for other, rows in fresh.items():
                if other != channel:
                    by_channel[other].extend(rows)
                    feeding = False  # finish this channel, then send the other's; take no more after that
            if fresh.get(channel):
                return fresh[channel], None
        return [], None

    with stop_on_sigterm():
        while by_channel:
            channel = next(iter(by_channel))
            channel_rows = by_channel.pop(channel)
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
            # Only the last channel takes more: the others' messages would wait behind everything it took.
            take = more_of if feeding and not by_channel else None
            _ChannelSender(channel, backend, counts, waiting_parents, take).run(channel_rows, not_before=not_before)
            not_before = None  # the first channel waited
    counts.pop("", None)
    return {status: count for status, count in counts.items() if count}


class QueuedRow(NamedTuple):
    """What deciding whether and how to send a queued message needs, before its claim loads the rest."""

    pk: int
    channel: str
    sender: str
    recipient: str
    category: str


def _sendable_by_channel(
    message_ids: list[int], counts: Counter, waiting_parents: set[int]
) -> defaultdict[str, list[tuple[int, str]]]:
    """The messages still queued among these, as (id, sender) by channel, once the expired ones have failed and
    the suppressed ones are recorded (both counted in `counts`). Adds those others wait for to
    `waiting_parents`."""
    counts[Status.FAILED] += fail_expired_messages(message_ids=message_ids)
    # Tuples, not model instances: building a thousand instances took four times as long as the query.
    rows = [
        QueuedRow(*values)
        for values in Message.objects.filter(pk_among(message_ids, status=Status.QUEUED))
        .order_by("pk")
        .values_list(*QueuedRow._fields)
    ]
    # One suppression lookup for the lot: opt-outs that arrived after queueing are still honoured.
    blocking = suppressions_blocking(rows)
    by_channel: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
    for message in rows:
        if message.pk in blocking:
            counts[record_suppressed(message, blocking[message.pk])] += 1
        else:
            by_channel[message.channel].append((message.pk, message.sender))
    waiting_parents.update(
        Message.objects.filter(among("depends_on_id", [m.pk for m in rows], status=Status.WAITING)).values_list(
            "depends_on_id", flat=True
        )
    )
    return by_channel
