"""A fake of Postmark's email API that django-anymail's Postmark backend can talk to unchanged.

anymail posts one message to `/email` and, when a message has per-recipient data, one message per To address to
`/email/batch`. It reads To, SubmittedAt, MessageID, ErrorCode and Message from each answer, treats HTTP 422 as a
per-recipient verdict and parses inactive and invalid addresses out of Message, so those texts follow Postmark's:
https://postmarkapp.com/developer/api/email-api
https://postmarkapp.com/developer/api/overview#error-codes

Addresses at INACTIVE_DOMAIN stand for recipients Postmark has suppressed after a hard bounce or spam complaint.

When configured with a webhook URL (and the basic-auth credentials Postmark's webhook settings take), it posts
each accepted message's tracking events there, per active recipient, in Postmark's JSON (the RecordTypes anymail's
Postmark tracking webhook reads: Delivery, Bounce, Open, Click, SpamComplaint, SubscriptionChange):
https://postmarkapp.com/developer/webhooks/webhooks-overview
Postmark authenticates webhooks only by basic auth; there is no signature.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import getaddresses
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from .base import RECEIVED_AT, Callback, CallbackSetting, FakeProvider, Message, check_choice, check_seconds, check_text

DEFAULT_SERVER_TOKEN = "fake-postmark-token"  # noqa: S105 - a fake credential for a fake server
INACTIVE_DOMAIN = "inactive.example"
RECIPIENT_FIELDS = ("To", "Cc", "Bcc")
MAX_BATCH_SIZE = 500
ADDR_SPEC = re.compile(r"^[^@\s\"(),:;<>\[\]\\]+@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,}$")

INVALID_REQUEST = 300
INVALID_JSON = 402
INACTIVE_RECIPIENT = 406


# The tracking events each outcome produces for a recipient (opens and clicks come after a delivery).
OUTCOMES: dict[str, tuple[str, ...]] = {
    "none": (),
    "delivered": ("Delivery",),
    "bounce": ("Bounce",),
    "soft_bounce": ("SoftBounce",),
    "complaint": ("Delivery", "SpamComplaint"),
    "unsubscribe": ("Delivery", "SubscriptionChange"),
}
SERVER_ID = 23
_bounce_ids = itertools.count(4_200_000_000)


@dataclasses.dataclass(frozen=True)
class PostmarkCallbackSettings:
    """Where tracking events go and what they say.

    webhook_url: the webhook URL set at Postmark (empty: post nothing)
    webhook_auth: "user:password" Postmark sends as basic auth (ANYMAIL["WEBHOOK_SECRET"] on our side)
    outcome: none | delivered | bounce | soft_bounce | complaint | unsubscribe
    opens, clicks: how many Open and Click events follow a delivery (the first open has FirstOpen true)
    click_url: the OriginalLink of each click
    callback_delay: seconds before each event
    """

    webhook_url: str = ""
    webhook_auth: str = ""
    outcome: str = "delivered"
    opens: int = 0
    clicks: int = 0
    click_url: str = "https://example.com/welcome"
    callback_delay: float = 0.05

    def __post_init__(self) -> None:
        check_text("webhook_url", self.webhook_url)
        check_text("webhook_auth", self.webhook_auth)
        check_text("click_url", self.click_url)
        check_choice("outcome", self.outcome, OUTCOMES)
        for name in ("opens", "clicks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise ValueError(f"{name} must be a count from 0 to 100, not {value!r}.")
        check_seconds("callback_delay", self.callback_delay)


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


BOUNCE_TYPES = {
    # record type -> (Type, TypeCode, Name, Description)
    "Bounce": (
        "HardBounce",
        1,
        "Hard bounce",
        "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
    ),
    "SoftBounce": ("SoftBounce", 4096, "Soft bounce", "Unable to temporarily deliver this email."),
    "SpamComplaint": ("SpamComplaint", 512, "Spam complaint", "The subscriber explicitly marked this email as spam."),
}
READER = {
    "Client": {"Name": "Firefox", "Company": "Mozilla", "Family": "Firefox"},
    "OS": {"Name": "Linux", "Company": "-", "Family": "Linux"},
    "Platform": "Desktop",
    "UserAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Geo": {"CountryISOCode": "FR", "Country": "France"},
}


def tracking_event(record_type: str, message: Message, recipient: str, **extra: Any) -> dict[str, Any]:
    """One Postmark webhook payload about `message` for `recipient`. `record_type` is a Postmark RecordType, or
    SoftBounce for a Bounce of that type."""
    common = {
        "MessageID": message["MessageID"],
        "ServerID": SERVER_ID,
        "MessageStream": "outbound",
        "Metadata": message.get("metadata") or {},
        "Tag": message.get("tag") or "",
    }
    if record_type in BOUNCE_TYPES:
        bounce_type, type_code, name, description = BOUNCE_TYPES[record_type]
        return {
            "RecordType": "SpamComplaint" if record_type == "SpamComplaint" else "Bounce",
            "ID": next(_bounce_ids),
            "Type": bounce_type,
            "TypeCode": type_code,
            "Name": name,
            **common,
            "Description": description,
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": recipient,
            "From": message["from"],
            "BouncedAt": now_iso(),
            "DumpAvailable": False,
            "Inactive": bounce_type != "SoftBounce",
            "CanActivate": True,
            "Subject": message.get("subject", ""),
        }
    event = {"RecordType": record_type, **common, "Recipient": recipient}
    if record_type == "Delivery":
        return {**event, "DeliveredAt": now_iso(), "Details": "smtp;250 2.0.0 OK"}
    if record_type == "SubscriptionChange":
        return {
            **event,
            "ChangedAt": now_iso(),
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
        }
    if record_type == "Open":
        return {**event, **READER, "ReceivedAt": now_iso(), "FirstOpen": extra.get("first", False), "ReadSeconds": 5}
    if record_type == "Click":
        return {**event, **READER, "ReceivedAt": now_iso(), "ClickLocation": "HTML", "OriginalLink": extra["url"]}
    raise ValueError(f"Unknown RecordType {record_type!r}")


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
    """Postmark's `POST /email`, `POST /email/batch` and `GET /server`, authenticated with the
    X-Postmark-Server-Token header."""

    display_name = "Postmark"
    refusals: ClassVar[dict[int, tuple[int, str]]] = {
        401: (10, "No Account or Server API tokens were supplied in the HTTP headers."),
        429: (429, "Rate limit exceeded: we have detected that you are making requests too quickly."),
        500: (500, "Internal server error."),
        503: (100, "Maintenance: the Postmark API is offline for maintenance."),
    }

    callback_settings_class = PostmarkCallbackSettings

    webhook_url = CallbackSetting()
    webhook_auth = CallbackSetting()
    outcome = CallbackSetting()
    opens = CallbackSetting()
    clicks = CallbackSetting()
    click_url = CallbackSetting()
    callback_delay = CallbackSetting()

    def __init__(
        self,
        server_token: str = DEFAULT_SERVER_TOKEN,
        latency: float = 0.0,
        seed: int | None = None,
        **callback_settings: Any,
    ) -> None:
        super().__init__(latency=latency, seed=seed, **callback_settings)
        self.server_token = server_token

    def add_provider_routes(self, app: web.Application) -> None:
        app.router.add_post("/email", self.send_email)
        app.router.add_post("/email/batch", self.send_batch)
        app.router.add_get("/server", self.get_server)

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
            answer = self.accept(await self.read_json(request), received_at=request[RECEIVED_AT])
        except PostmarkError as error:
            return web.json_response(error.as_json(), status=422)
        self.schedule_tracking(request, [answer])
        return web.json_response(answer)

    async def get_server(self, request: web.Request) -> web.Response:
        """The server the token belongs to (Server API, `GET /server`): a harmless check of the token.
        https://postmarkapp.com/developer/api/server-api#get-server"""
        refusal = await self.refusal_for(request)
        if refusal is not None:
            return refusal
        return web.json_response(
            {
                "ID": SERVER_ID,
                "Name": "Tidings fake server",
                "ApiTokens": [self.server_token],
                "Color": "blue",
                "SmtpApiActivated": True,
                "RawEmailEnabled": False,
                "DeliveryType": "Live",
                "ServerLink": f"https://account.postmarkapp.com/servers/{SERVER_ID}/streams",
                "InboundAddress": "fake-inbound-hash@inbound.postmarkapp.com",
                "InboundHookUrl": "",
                "BounceHookUrl": "",
                "OpenHookUrl": "",
                "DeliveryHookUrl": self.callback_settings.webhook_url,
                "PostFirstOpenOnly": False,
                "InboundDomain": "",
                "InboundHash": "fake-inbound-hash",
                "InboundSpamThreshold": 0,
                "TrackOpens": self.callback_settings.opens > 0,
                "TrackLinks": "HtmlAndText" if self.callback_settings.clicks > 0 else "None",
                "IncludeBounceContentInHook": False,
                "ClickHookUrl": "",
                "EnableSmtpApiErrorHooks": False,
            }
        )

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
        answers = [self.answer_in_batch(message, received_at=request[RECEIVED_AT]) for message in messages]
        self.schedule_tracking(request, answers)
        return web.json_response(answers)

    # --- Tracking webhooks ----------------------------------------------------------------------------------

    def schedule_tracking(self, request: web.Request, answers: list[dict[str, Any]]) -> None:
        settings = self.callback_settings
        if not settings.webhook_url or settings.outcome == "none":
            return
        accepted_ids = {answer["MessageID"] for answer in answers if answer.get("ErrorCode") == 0}
        messages = [message for message in self.received if message["MessageID"] in accepted_ids]
        plan = [
            (message, recipient, record_type, extra)
            for message in messages
            for recipient in self.recipients_of(message)
            for record_type, extra in self.events_for(settings)
        ]

        async def post_events(session: aiohttp.ClientSession) -> None:
            for message, recipient, record_type, extra in plan:
                await asyncio.sleep(settings.callback_delay)
                # Built when posted, so each event carries its own time, as Postmark's do.
                await self.post_event(session, tracking_event(record_type, message, recipient, **extra), settings)

        self.schedule_callbacks(request, post_events)

    @staticmethod
    def events_for(settings: PostmarkCallbackSettings) -> list[tuple[str, dict[str, Any]]]:
        """The RecordTypes to post for one recipient, each with its extra details."""
        events: list[tuple[str, dict[str, Any]]] = []
        for kind in OUTCOMES[settings.outcome]:
            events.append((kind, {}))
            if kind == "Delivery":  # people read and click before they complain or unsubscribe
                events += [("Open", {"first": n == 0}) for n in range(settings.opens)]
                events += [("Click", {"url": settings.click_url}) for _ in range(settings.clicks)]
        return events

    async def post_event(
        self, session: aiohttp.ClientSession, event: dict[str, Any], settings: PostmarkCallbackSettings
    ) -> Callback:
        headers = {"Content-Type": "application/json", "User-Agent": "Postmark"}
        if settings.webhook_auth:
            headers["Authorization"] = "Basic " + base64.b64encode(settings.webhook_auth.encode()).decode()
        return await self.post_callback(
            session,
            settings.webhook_url,
            body=json.dumps(event).encode(),
            headers=headers,
            kind=event["RecordType"],
            message_id=event["MessageID"],
        )

    def post_tracking(self, message_id: str, record_type: str, **extra: Any) -> Callback:
        """From a test: post one tracking event for an accepted message now, whatever the outcome says."""
        [message] = [m for m in self.received if m["MessageID"] == message_id] or [None]
        if message is None:
            raise ValueError(f"No accepted message {message_id}.")
        settings = self.callback_settings
        event = tracking_event(record_type, message, next(iter(self.recipients_of(message))), **extra)
        return self.run_on_server_loop(lambda session: self.post_event(session, event, settings))

    async def read_json(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except (ValueError, UnicodeDecodeError):
            raise PostmarkError(INVALID_JSON, "Received invalid JSON input.")

    def answer_in_batch(self, message: Any, received_at: float | None = None) -> dict[str, Any]:
        try:
            return self.accept(message, received_at=received_at)
        except PostmarkError as error:
            return error.as_json()

    def accept(self, message: Any, received_at: float | None = None) -> dict[str, Any]:
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
            },
            received_at=received_at,
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
