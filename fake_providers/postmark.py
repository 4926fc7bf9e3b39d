"""A fake of Postmark's email API that django-anymail's Postmark backend can talk to unchanged.

anymail posts one message to `/email` and, when a message has per-recipient data, one message per To address to
`/email/batch`. It reads To, SubmittedAt, MessageID, ErrorCode and Message from each answer, treats HTTP 422 as a
per-recipient verdict and parses inactive and invalid addresses out of Message, so those texts follow Postmark's:
https://postmarkapp.com/developer/api/email-api
https://postmarkapp.com/developer/api/overview#error-codes

Addresses at INACTIVE_DOMAIN stand for recipients Postmark has suppressed after a hard bounce or spam complaint.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import getaddresses
from typing import Any, ClassVar

from aiohttp import web

from .base import FakeProvider, Message

DEFAULT_SERVER_TOKEN = "fake-postmark-token"  # noqa: S105 - a fake credential for a fake server
INACTIVE_DOMAIN = "inactive.example"
RECIPIENT_FIELDS = ("To", "Cc", "Bcc")
MAX_BATCH_SIZE = 500
ADDR_SPEC = re.compile(r"^[^@\s\"(),:;<>\[\]\\]+@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,}$")

INVALID_REQUEST = 300
INVALID_JSON = 402
INACTIVE_RECIPIENT = 406


class PostmarkError(Exception):
    """A message Postmark would refuse with this ErrorCode (HTTP 422 for /email, inside a 200 for /email/batch)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_json(self) -> dict[str, Any]:
        return {"ErrorCode": self.code, "Message": self.message}


def addr_specs(header_value: str | None) -> list[str]:
    return [addr_spec for _, addr_spec in getaddresses([header_value])] if header_value else []


def is_inactive(addr_spec: str) -> bool:
    return addr_spec.lower().endswith("@" + INACTIVE_DOMAIN)


def validate_message(message: Any) -> dict[str, list[str]]:
    """Returns the recipients by field, or raises PostmarkError for the first problem Postmark would report."""
    if not isinstance(message, dict):
        raise PostmarkError(INVALID_JSON, "Received invalid JSON input.")
    for field in ("From", *RECIPIENT_FIELDS):
        if not isinstance(message.get(field) or "", str):
            raise PostmarkError(INVALID_REQUEST, f"Invalid '{field}' address: '{message[field]}'.")
    if not ADDR_SPEC.match(next(iter(addr_specs(message.get("From"))), "")):
        raise PostmarkError(INVALID_REQUEST, f"Invalid 'From' address: '{message.get('From') or ''}'.")
    recipients = {field: addr_specs(message.get(field)) for field in RECIPIENT_FIELDS}
    if not any(recipients.values()):
        raise PostmarkError(INVALID_REQUEST, "Zero recipients specified")
    for field, addresses in recipients.items():
        for address in addresses:
            if not ADDR_SPEC.match(address):
                raise PostmarkError(INVALID_REQUEST, f"Invalid '{field}' address: '{address}'.")
    if not (message.get("TextBody") or message.get("HtmlBody")):
        raise PostmarkError(INVALID_REQUEST, "Provide either email TextBody or HtmlBody or both.")
    headers = message.get("Headers") or []
    if not (isinstance(headers, list) and all(isinstance(header, dict) and "Name" in header for header in headers)):
        raise PostmarkError(INVALID_REQUEST, 'Headers must be a list of {"Name": ..., "Value": ...} objects.')
    return recipients


class FakePostmark(FakeProvider):
    """Postmark's `POST /email` and `POST /email/batch`, authenticated with the X-Postmark-Server-Token header."""

    display_name = "Postmark"
    refusals: ClassVar[dict[int, tuple[int, str]]] = {
        401: (10, "No Account or Server API tokens were supplied in the HTTP headers."),
        429: (429, "Rate limit exceeded: we have detected that you are making requests too quickly."),
        500: (500, "Internal server error."),
        503: (100, "Maintenance: the Postmark API is offline for maintenance."),
    }

    def __init__(
        self,
        server_token: str = DEFAULT_SERVER_TOKEN,
        latency: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(latency=latency, seed=seed)
        self.server_token = server_token

    def add_provider_routes(self, app: web.Application) -> None:
        app.router.add_post("/email", self.send_email)
        app.router.add_post("/email/batch", self.send_batch)

    def is_authorized(self, request: web.Request) -> bool:
        return request.headers.get("X-Postmark-Server-Token") == self.server_token

    def error_response(self, status: int, code: int, message: str) -> web.Response:
        return web.json_response(PostmarkError(code, message).as_json(), status=status)

    def recipients_of(self, message: Message) -> Iterable[str]:
        """The To addresses Postmark would deliver to: inactive ones are skipped."""
        return [address for address in addr_specs(message["to"]) if not is_inactive(address)]

    async def send_email(self, request: web.Request) -> web.Response:
        refusal = await self.refusal_for(request)
        if refusal is not None:
            return refusal
        try:
            return web.json_response(self.accept(await self.read_json(request)))
        except PostmarkError as error:
            return web.json_response(error.as_json(), status=422)

    async def send_batch(self, request: web.Request) -> web.Response:
        refusal = await self.refusal_for(request)
        if refusal is not None:
            return refusal
        try:
            messages = await self.read_json(request)
            if not isinstance(messages, list):
                raise PostmarkError(INVALID_JSON, "Received invalid JSON input: expected an array of messages.")
            if len(messages) > MAX_BATCH_SIZE:
                raise PostmarkError(INVALID_REQUEST, f"A batch may hold at most {MAX_BATCH_SIZE} messages.")
        except PostmarkError as error:
            return web.json_response(error.as_json(), status=422)
        return web.json_response([self.answer_in_batch(message) for message in messages])

    async def read_json(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except (ValueError, UnicodeDecodeError):
            raise PostmarkError(INVALID_JSON, "Received invalid JSON input.")

    def answer_in_batch(self, message: Any) -> dict[str, Any]:
        try:
            return self.accept(message)
        except PostmarkError as error:
            return error.as_json()

    def accept(self, message: Any) -> dict[str, Any]:
        """Records a message that reaches at least one active recipient and answers as Postmark does."""
        recipients = validate_message(message)
        all_addresses = [address for addresses in recipients.values() for address in addresses]
        inactive = [address.lower() for address in all_addresses if is_inactive(address)]
        if len(inactive) == len(all_addresses):
            raise PostmarkError(
                INACTIVE_RECIPIENT,
                "You tried to send to recipient(s) that have been marked as inactive.\n"
                f"Found inactive addresses: {', '.join(inactive)}.\n"
                "Inactive recipients are ones that have generated a hard bounce, a spam complaint, "
                "or a manual suppression. ",
            )
        recorded = self.record(
            {
                "MessageID": str(uuid.uuid4()),
                "to": message.get("To"),
                "cc": message.get("Cc"),
                "bcc": message.get("Bcc"),
                "from": message["From"],
                "subject": message.get("Subject", ""),
                "text_body": message.get("TextBody"),
                "html_body": message.get("HtmlBody"),
                "metadata": message.get("Metadata") or {},
                "tag": message.get("Tag"),
                "headers": {header["Name"]: header.get("Value", "") for header in message.get("Headers") or []},
            }
        )
        answer: dict[str, Any] = {
            "SubmittedAt": datetime.now(UTC).isoformat(),
            "MessageID": recorded["MessageID"],
            "ErrorCode": 0,
            "Message": "OK",
        }
        if message.get("To"):
            answer["To"] = message["To"]
        if inactive:
            answer["Message"] = (
                f"Message OK, but will not deliver to these inactive addresses: {', '.join(inactive)}. "
                "Inactive recipients are ones that have generated a hard bounce or a spam complaint."
            )
        return answer
