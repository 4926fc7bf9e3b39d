"""The smoke test's real messages: one per `--to` target, through the normal path (stored, queued, sent by a
worker, its receipt posted back by the provider), and the wait for each to be delivered.

A target is a phone number (SMS), `whatsapp:+1…`, `messenger:PSID` or an email address. The messages are
transactional (an operator's own address on the opt-out list still gets them) and high priority (ahead of any
backlog), with `{"smoke_test": true}` in their metadata, so they are found and told apart in the admin.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from content.services.templates import RenderedContent
from deliveries.backends import provider_for
from deliveries.models import Category, Message, Priority, Status
from deliveries.services.messages import (
    MessageRequest,
    MessageValidationError,
    message_create,
    message_request_validate,
)

from .results import CheckResult

POLL_SECONDS = 0.5
PROGRESS_EVERY_SECONDS = 10.0
# Providers that report nothing after accepting a message: "sent" is as far as it goes.
NO_RECEIPTS = {"console", "locmem", "smtp", "filebased", "dummy", "test"}
FINAL_FAILURES = {
    Status.FAILED: "check the address, and the provider's log for this message",
    Status.UNDELIVERED: "check the address, and the provider's log for this message",
    Status.SUPPRESSED: "the address is on the suppression list: lift it in the admin (Suppressions) to test with it",
    Status.CANCELLED: "someone cancelled it in the admin or through the API",
    Status.REVIEW: "the worker stopped during the provider call: see the message in the admin",
}


class SmokeTargetError(ValueError):
    """A --to value that is no address Tidings can send to."""


@dataclass(frozen=True)
class SmokeTarget:
    given: str  # as the operator typed it
    channel: str
    address: str

    @property
    def label(self) -> str:
        return f"send {self.channel} → {self.given}"


def smoke_target_parse(value: str) -> SmokeTarget:
    """`+14155550100` (SMS), `whatsapp:+14155550100`, `messenger:<PSID>`, `ada@example.com`; SmokeTargetError with
    the reason otherwise."""
    text = value.strip()
    if text.lower().startswith("whatsapp:"):
        channel, address = "whatsapp", text[len("whatsapp:") :]
    elif text.lower().startswith("messenger:"):
        channel, address = "messenger", text[len("messenger:") :]
    elif "@" in text:
        channel, address = "email", text
    else:
        channel, address = "sms", text
    try:
        smoke_message_validate(channel, address)
    except MessageValidationError as error:
        reasons = " ".join(" ".join(messages) for messages in error.errors.values())
        raise SmokeTargetError(f"--to {value!r}: {reasons}") from error
    return SmokeTarget(given=text, channel=channel, address=address)


def smoke_message_validate(channel: str, address: str) -> tuple[MessageRequest, RenderedContent]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return message_request_validate(
        channel=channel,
        to=address,
        subject="Tidings smoke test",
        body=f"Tidings smoke test from {socket.gethostname()} at {now}. No reply needed.",
        priority=Priority.HIGH,
        category=Category.TRANSACTIONAL,
        metadata={"smoke_test": True},
        quiet_hours=False,  # an operator checking the system now waits for its answer now
    )


def expected_status(channel: str) -> str:
    return Status.SENT if provider_for(channel) in NO_RECEIPTS else Status.DELIVERED


def smoke_sends_run(
    *,
    targets: list[SmokeTarget],
    timeout: float,
    blocked: dict[str, str],
    progress: Callable[[str], None],
) -> list[CheckResult]:
    """Sends one message per target (except to a channel named in `blocked`, with its reason) and waits at most
    `timeout` seconds for all of them together, saying what each one does meanwhile."""
    results: dict[int, CheckResult] = {}
    sent: dict[int, tuple[SmokeTarget, Message]] = {}
    for index, target in enumerate(targets):
        reason = blocked.get(target.channel) or blocked.get("*")
        if reason:
            results[index] = CheckResult.fail(target.label, f"not sent: {reason}", "fix the failures above first")
            continue
        request, content = smoke_message_validate(target.channel, target.address)
        message = message_create(request=request, content=content)
        sent[index] = (target, message)
        progress(f"...  {target.label}: message {message.pk} queued")
    results.update(receipts_wait(sent, timeout=timeout, progress=progress))
    return [results[index] for index in range(len(targets))]


def receipts_wait(
    sent: dict[int, tuple[SmokeTarget, Message]], *, timeout: float, progress: Callable[[str], None]
) -> dict[int, CheckResult]:
    started = time.monotonic()
    last_said = started
    results: dict[int, CheckResult] = {}
    statuses = {index: message.status for index, (_target, message) in sent.items()}
    while len(results) < len(sent):
        for index, (target, message) in sent.items():
            if index in results:
                continue
            message.refresh_from_db()
            if message.status != statuses[index]:
                statuses[index] = message.status
                progress(f"...  {target.label}: {message.status}")
            result = final_result(target, message, elapsed=time.monotonic() - started)
            if result is not None:
                results[index] = result
        now = time.monotonic()
        if now - started >= timeout:
            break
        if now - last_said >= PROGRESS_EVERY_SECONDS and len(results) < len(sent):
            last_said = now
            progress(f"...  waiting for {len(sent) - len(results)} message(s): {now - started:.0f} s of {timeout:g} s")
        time.sleep(POLL_SECONDS)
    for index, (target, message) in sent.items():
        if index not in results:
            results[index] = timed_out(target, message, timeout)
    return results


def final_result(target: SmokeTarget, message: Message, *, elapsed: float) -> CheckResult | None:
    """The result once the message has gone as far as it will; None while it may still move."""
    where = f" (provider id {message.provider_message_id})" if message.provider_message_id else ""
    if message.status == expected_status(target.channel) or message.status == Status.DELIVERED:
        return CheckResult.ok(target.label, f"{message.status} in {elapsed:.1f} s{where}, message {message.pk}")
    if message.status in FINAL_FAILURES:
        error = f": {message.last_error_message} (code {message.last_error_code})" if message.last_error_message else ""
        return CheckResult.fail(
            target.label,
            f"{message.status}{error}{where}, message {message.pk}",
            FINAL_FAILURES[Status(message.status)],
        )
    return None


def timed_out(target: SmokeTarget, message: Message, timeout: float) -> CheckResult:
    late = f"after {timeout:g} s, message {message.pk}"
    if message.status == Status.SENT:
        return CheckResult.fail(
            target.label,
            f"sent (provider id {message.provider_message_id}) but no delivery receipt {late}",
            "check the webhook lines above, and the provider's webhook settings (README, Webhooks)",
        )
    if message.status == Status.QUEUED:
        return CheckResult.fail(
            target.label,
            f"still queued {late}: no worker took it",
            "check the workers line; a worker must listen to the high queue",
        )
    if message.status == Status.SCHEDULED and message.last_error_message:
        return CheckResult.fail(
            target.label,
            f"waiting for a retry {late}: {message.last_error_message} (code {message.last_error_code})",
            "see the provider's line above; the dispatcher retries it",
        )
    return CheckResult.fail(target.label, f"still {message.status} {late}", f"follow message {message.pk} in the admin")
