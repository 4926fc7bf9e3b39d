"""What became of each message the send path handled: sent, retried later, failed, or suppressed.

An accepted call moves its message sending -> sent with the provider's id. A transient error sends it back to
`scheduled` with a jittered backoff while attempts and its deadline allow; otherwise, and for a refusal, it ends
`failed` with the provider's code and a reason a person can read. A suppressed recipient ends `suppressed` before
any claim. Accepted calls are written a group at a time, with the next wave's claim in the same round trip
(`record_accepted_and_claim`); retries and failures one by one.
"""

from __future__ import annotations

import functools
import logging
import random
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging_project.log_context import log_context

from ..backends.base import SendResult
from ..exceptions import DeliveryError
from ..instruments import observe_many, observe_sent, provider_call_seconds
from ..models import Message, Status, Suppression
from ..services.feedback import receipts_apply_pending
from ..services.suppression import suppression_add, suppression_explain
from ..state import transition, transitions_together
from .claims import claim_transition, claimed_in_order, claimed_with_token
from .database_loss import written_despite_database_loss
from .gate import Deferral

logger = logging.getLogger(__name__)


def max_attempts_for(channel: str) -> int:
    """SMS_MAX_ATTEMPTS / EMAIL_MAX_ATTEMPTS, or SEND_MAX_ATTEMPTS for a channel without its own."""
    return int(getattr(settings, f"{channel.upper()}_MAX_ATTEMPTS", None) or settings.SEND_MAX_ATTEMPTS)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with jitter: SEND_RETRY_BACKOFF doubled after each attempt, capped at
    SEND_RETRY_BACKOFF_MAX, of which the share SEND_RETRY_JITTER is drawn at random so a burst's retries spread."""
    ceiling = min(settings.SEND_RETRY_BACKOFF * (2 ** max(attempts - 1, 0)), settings.SEND_RETRY_BACKOFF_MAX)
    jitter = min(max(settings.SEND_RETRY_JITTER, 0.0), 1.0)
    return timedelta(seconds=ceiling * (1 - jitter * random.random()))  # noqa: S311 - spreading, not secrecy


def clock(moment: datetime) -> str:
    """A moment as a timeline detail shows it: 14:03:07.250 UTC."""
    return f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d} UTC"


class _Identified(Protocol):
    @property
    def pk(self) -> int: ...


def record_suppressed(message: _Identified, suppression: Suppression) -> str:
    """A queued message whose recipient is on the suppression list ends `suppressed`, with the reason.

    Checked just before the claim, so it is never handed to a provider and spends no attempt. Returns the status
    it ended in ("" if it was no longer queued).
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


def record_deferred(deferral: Deferral) -> int:
    """Messages the provider gate held back go queued -> scheduled, each at the moment it may go (a pause's end,
    or its window of the send rate), spending no attempt. Returns how many moved."""
    by_time: dict[datetime, list[int]] = defaultdict(list)
    for position, pk in enumerate(deferral.message_ids):
        by_time[deferral.send_at_for(position)].append(pk)
    moved = 0
    for send_at, ids in by_time.items():
        moved += len(
            transition(
                ids,
                to_status=Status.SCHEDULED,
                from_statuses=[Status.QUEUED],
                fields={"send_at": send_at},
                code=deferral.code,
                detail=f"{deferral.reason} Waiting until {clock(send_at)}; no attempt spent.",
            )
        )
    return moved


class Recorded(NamedTuple):
    """What record_accepted_and_claim did: the ids moved to `sent`, and the messages it claimed (by id)."""

    sent_ids: list[int]
    claimed: list[Message]


def record_accepted_and_claim(
    accepted: list[tuple[Message, SendResult]],
    claim_ids: list[int],
    *,
    provider: str = "",
    waiting_parents: set[int] | None = None,
    claim_token: uuid.UUID | None = None,
) -> Recorded:
    """Write calls one provider accepted, then claim `claim_ids`, in one round trip to PostgreSQL.

    The accepted go sending -> sent (from `review` too: the lease ran out while the call was slow, and here is its
    answer after all) with each row's provider id, in one UPDATE that writes their events. The call slots they
    free are claimed again in the same commit (state.transitions_together), so a worker never has more messages
    `sending` than slots, and a slot waits for one round trip between calls instead of two.

    `waiting_parents`: the messages known to have dependents waiting (None: unknown); for a group with none of
    them, the dependents lookup is skipped. `claim_token`: the claim's token, when the caller must be able to find
    what it claimed after a lost connection (else a new one).
    """
    calls = []
    if accepted:
        calls.append(_record_accepted_transition(accepted, waiting_parents))
    if claim_ids:
        calls.append(claim_transition(claim_ids, provider, token=claim_token))
    results = transitions_together(*calls)
    sent_ids = _provider_ids_kept(accepted, results[0]) if accepted else []
    claimed = claimed_in_order(results[-1]) if claim_ids else []
    return Recorded(sent_ids, claimed)


def _record_accepted_transition(
    accepted: list[tuple[Message, SendResult]], waiting_parents: set[int] | None
) -> dict[str, Any]:
    provider = accepted[0][1].provider
    events = {}
    for message, result in accepted:
        attempt, max_attempts = message.attempts, max_attempts_for(message.channel)
        said = f"Accepted by {result.provider}" + (
            f" as {result.provider_message_id}" if result.provider_message_id else ""
        )
        data: dict[str, Any] = {"attempt": attempt, "max_attempts": max_attempts}
        if result.provider_status:
            data["provider_status"] = result.provider_status
        events[message.pk] = (f"Attempt {attempt} of {max_attempts}: {said}.", data)
    return {
        "message_ids": list(events),
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


def _provider_ids_kept(accepted: list[tuple[Message, SendResult]], moved: list[int]) -> list[int]:
    """After the accepted calls' transition: the ids it moved, and the provider's ids kept on those it did not."""
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
    """A failed provider call: retry later (transient, attempts left, still in time) or fail with the reason.

    Returns the status the message went to ("" if it was no longer ours)."""
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
            retrying = f"{failed} Retrying at {clock(send_at)}."
            moved = transition(
                [message.pk],
                to_status=Status.SCHEDULED,
                from_statuses=[Status.SENDING],
                extra_filter=claim,
                fields={**error_fields, "send_at": send_at},
                code=error.code,
                detail=retrying,
                data={**data, "next": "retry", "retry_at": send_at.isoformat()},
            )
            if moved:
                _log_failure(message, logging.INFO, retrying)
            return Status.SCHEDULED if moved else ""
        why = f"Too late for another try: {error.reason}"
        detail = (
            f"{failed} The next try ({clock(send_at)}) would be past its deadline "
            f"({clock(message.expires_at)}), so it is not sent."
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
    # One commit for the failure and its suppression: repeated after a lost connection (database_loss.py), the
    # failure would match nothing and its suppression be skipped, had the first try committed only the failure.
    with transaction.atomic():
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
    if moved:
        _log_failure(message, logging.WARNING, detail)
    return Status.FAILED if moved else ""


def _log_failure(message: Message, level: int, detail: str) -> None:
    """One line per failed call (never per accepted one), about its message; the recipient masked."""
    fields = {"message_id": message.pk, "attempt": message.attempts, "campaign_id": message.campaign_id}
    with log_context(**fields, recipient=message.recipient):
        logger.log(level, "Message %s: %s", message.pk, detail)


class OutcomeRecorder:
    """A channel sender's outcomes as its calls come back, counted by status.

    Failures are written at once, one by one with their reasons. Accepted calls wait until `write()`, which sends
    them with the claim of the next wave (the slots they free) in one round trip, or alone before the sender waits
    for answers, takes more messages or ends. Receipts that arrived before their provider ids were stored are
    applied by `apply_early_receipts()`.
    """

    def __init__(self, provider: str, counts: Counter[str], waiting_parents: set[int]):
        self.provider = provider
        self.counts = counts
        self.waiting_parents = waiting_parents
        self.unwritten: list[tuple[Message, SendResult]] = []
        self.provider_ids: list[str] = []  # stored since the early receipts were last applied

    def take(self, answers: list[tuple[Message, SendResult]]) -> None:
        """Take the calls that came back: failures written now, accepted ones kept for `write()`."""
        if answers:
            calls = provider_call_seconds.labels(answers[0][0].channel, self.provider)
            observe_many(calls, [result.call_seconds for _, result in answers])
        self.unwritten += [(message, result) for message, result in answers if result.ok]
        for message, result in answers:
            if result.error is not None:
                failure = functools.partial(record_failure, message, result.error, provider=result.provider)
                self.counts[written_despite_database_loss(failure, what="recording a failed call")] += 1

    def write(self, claim_ids: list[int] | None = None) -> list[Message]:
        """Write the accepted calls' outcomes and claim `claim_ids` (a wave), in one round trip; returns the
        messages claimed. A slot is free from then: its message is no longer `sending`."""
        accepted, self.unwritten = self.unwritten, []
        if not accepted and not claim_ids:
            return []
        token, tries = uuid.uuid4(), 0

        def record() -> Recorded:
            nonlocal tries
            tries += 1
            recorded = record_accepted_and_claim(
                accepted,
                claim_ids or [],
                provider=self.provider,
                waiting_parents=self.waiting_parents,
                claim_token=token,
            )
            if tries > 1 and claim_ids:
                # A try whose commit the lost connection hid took some of them: they hold this token.
                returned = {message.pk for message in recorded.claimed}
                taken_before = [m for m in claimed_with_token(claim_ids, token) if m.pk not in returned]
                recorded = Recorded(recorded.sent_ids, claimed_in_order(recorded.claimed + taken_before))
            return recorded

        try:
            recorded = written_despite_database_loss(record, what="recording sent messages and claiming more")
        except Exception:
            self.unwritten = accepted + self.unwritten  # the sender's last write (its `finally`) tries them again
            raise
        self.counts[Status.SENT] += len(recorded.sent_ids)
        if recorded.sent_ids:
            sent_ids = set(recorded.sent_ids)
            observe_sent([message for message, _ in accepted if message.pk in sent_ids], timezone.now())
        self.provider_ids += [result.provider_message_id for _, result in accepted if result.provider_message_id]
        return recorded.claimed

    def apply_early_receipts(self) -> None:
        """Apply the receipts that arrived before the provider ids written since last time were stored."""
        receipts_apply_pending(provider=self.provider, provider_message_ids=self.provider_ids)
        self.provider_ids = []
