"""A fake of Meta's Send API for Messenger: `POST /{version}/me/messages?access_token=PAGE_TOKEN`.

It checks what Meta checks first (the token, appsecret_proof when given, the recipient, the message, the
messaging type), answers like Meta with `recipient_id` and `message_id`, and reports errors in the Graph API's
shape ({"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}):
https://developers.facebook.com/docs/messenger-platform/reference/send-api/
https://developers.facebook.com/docs/graph-api/guides/error-handling

When configured with a webhook URL, it then posts the page's `delivery` (and `read`) events there, signed as Meta
signs them: X-Hub-Signature-256 is `sha256=` + the hex HMAC-SHA256 of the body keyed with the app secret.
https://developers.facebook.com/docs/messenger-platform/webhooks#validate-payloads
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from .base import RECEIVED_AT, Callback, CallbackSetting, FakeProvider, Message, check_choice, check_seconds, check_text

DEFAULT_ACCESS_TOKEN = "fake-page-access-token"  # noqa: S105 - a fake credential for a fake server
DEFAULT_APP_SECRET = "fake-app-secret"  # noqa: S105
DEFAULT_PAGE_ID = "1000000000000001"
API_VERSION = re.compile(r"^v\d+\.\d+$")
MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG"}
MAX_TEXT_LENGTH = 2000

# Magic PSIDs, like Twilio's magic numbers: the person blocked the page, or never talked to it.
UNAVAILABLE_PSID = "5510000000000000"
UNKNOWN_PSID = "2018001000000000"

OUTCOMES: dict[str, tuple[str, ...]] = {"none": (), "delivered": ("delivery",), "read": ("delivery", "read")}


class GraphError(Exception):
    def __init__(self, code: int, message: str, *, subcode: int | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.subcode, self.status = code, message, subcode, status


@dataclasses.dataclass(frozen=True)
class MessengerCallbackSettings:
    """webhook_url: the page's webhook (empty: post nothing); outcome: none | delivered | read;
    callback_delay: seconds before each event."""

    webhook_url: str = ""
    outcome: str = "delivered"
    callback_delay: float = 0.05

    def __post_init__(self) -> None:
        check_text("webhook_url", self.webhook_url)
        check_choice("outcome", self.outcome, OUTCOMES)
        check_seconds("callback_delay", self.callback_delay)


def hub_signature(app_secret: str, body: bytes, digest=hashlib.sha256) -> str:
    return hmac.new(app_secret.encode(), body, digest).hexdigest()


def validate_send(payload: Any) -> None:
    """Raises GraphError for the first problem the Send API would report."""
    if not isinstance(payload, dict):
        raise GraphError(100, "(#100) Invalid JSON for postbody")
    recipient = payload.get("recipient")
    if not isinstance(recipient, dict) or not recipient.get("id"):
        raise GraphError(100, "(#100) The parameter recipient is required")
    message = payload.get("message")
    if not isinstance(message, dict) or not (message.get("text") or message.get("attachment")):
        raise GraphError(100, "(#100) param message must be non-empty")
    if len(message.get("text") or "") > MAX_TEXT_LENGTH:
        raise GraphError(100, f"(#100) Length of param message[text] must be less than or equal to {MAX_TEXT_LENGTH}")
    messaging_type = payload.get("messaging_type", "RESPONSE")
    if messaging_type not in MESSAGING_TYPES:
        raise GraphError(100, "(#100) param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
    if messaging_type == "MESSAGE_TAG" and not payload.get("tag"):
        raise GraphError(100, "(#100) Tag is required for MESSAGE_TAG messaging type")
    psid = str(recipient["id"])
    if not psid.isdigit() or psid == UNKNOWN_PSID:
        raise GraphError(100, "(#100) No matching user found", subcode=2018001)
    if psid == UNAVAILABLE_PSID:
        raise GraphError(551, "(#551) This person isn't available right now.", subcode=1545041)


class FakeMessenger(FakeProvider):
    """Meta's Send API for one page, authenticated by the page access token in the query string, and `GET /me`
    (the page the token belongs to), the harmless call that checks the token."""

    display_name = "Messenger"
    refusals: ClassVar[dict[int, tuple[int, str]]] = {
        401: (190, "Invalid OAuth access token - Cannot parse access token"),
        429: (613, "(#613) Calls to this api have exceeded the rate limit."),
        500: (1, "An unknown error has occurred."),
        503: (2, "An unexpected error has occurred. Please retry your request later."),
    }
    callback_settings_class = MessengerCallbackSettings

    webhook_url = CallbackSetting()
    outcome = CallbackSetting()
    callback_delay = CallbackSetting()

    def __init__(
        self,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        app_secret: str = DEFAULT_APP_SECRET,
        page_id: str = DEFAULT_PAGE_ID,
        latency: float = 0.0,
        seed: int | None = None,
        **callback_settings: Any,
    ) -> None:
        super().__init__(latency=latency, seed=seed, **callback_settings)
        self.access_token = access_token
        self.app_secret = app_secret
        self.page_id = page_id

    def add_provider_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/me/messages", self.send_message)
        app.router.add_get("/{version}/me", self.get_page)

    def is_authorized(self, request: web.Request) -> bool:
        return hmac.compare_digest(request.query.get("access_token", ""), self.access_token)

    def error_response(self, status: int, code: int, message: str, subcode: int | None = None) -> web.Response:
        error: dict[str, Any] = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": secrets.token_urlsafe(8),
        }
        if subcode:
            error["error_subcode"] = subcode
        if code in (1, 2, 613):
            error["is_transient"] = True
        # Graph answers a bad token with 400, not 401.
        return web.json_response({"error": error}, status=400 if status == 401 else status)

    def recipients_of(self, message: Message) -> list[str]:
        return [message["recipient_id"]]

    async def refusal_of_graph_call(self, request: web.Request) -> web.Response | None:
        """What Graph answers before looking at the call: an unknown version, the faults, a wrong token or proof."""
        if not API_VERSION.match(request.match_info["version"]):
            return self.error_response(400, 2500, f"Unknown path components: /{request.match_info['version']}")
        refusal = await self.refusal_for(request)
        if refusal is not None:
            return refusal
        proof = request.query.get("appsecret_proof")
        if proof is not None and not hmac.compare_digest(
            proof, hub_signature(self.app_secret, self.access_token.encode())
        ):
            return self.error_response(400, 100, "Invalid appsecret_proof provided in the API argument")
        return None

    async def get_page(self, request: web.Request) -> web.Response:
        """`GET /me` with a page token: the page's id and name (the default fields)."""
        refusal = await self.refusal_of_graph_call(request)
        return refusal or web.json_response({"name": "Tidings fake page", "id": self.page_id})

    async def send_message(self, request: web.Request) -> web.Response:
        refusal = await self.refusal_of_graph_call(request)
        if refusal is not None:
            return refusal
        proof = request.query.get("appsecret_proof")
        try:
            payload = await request.json()
        except (ValueError, UnicodeDecodeError):
            payload = None
        try:
            validate_send(payload)
        except GraphError as error:
            return self.error_response(error.status, error.code, error.message, error.subcode)
        message = self.record(
            {
                "message_id": "m_" + secrets.token_urlsafe(32),
                "recipient_id": str(payload["recipient"]["id"]),
                "messaging_type": payload.get("messaging_type", "RESPONSE"),
                "tag": payload.get("tag"),
                "text": payload["message"].get("text"),
                "attachment": payload["message"].get("attachment"),
                "appsecret_proof": proof is not None,
            },
            received_at=request[RECEIVED_AT],
        )
        self.schedule_receipts(request, message)
        return web.json_response({"recipient_id": message["recipient_id"], "message_id": message["message_id"]})

    # --- Webhook events -------------------------------------------------------------------------------------

    def schedule_receipts(self, request: web.Request, message: Message) -> None:
        settings = self.callback_settings
        if not settings.webhook_url or settings.outcome == "none":
            return

        async def post_receipts(session: aiohttp.ClientSession) -> None:
            for kind in OUTCOMES[settings.outcome]:
                await asyncio.sleep(settings.callback_delay)
                await self.post_event(session, settings.webhook_url, self.receipt_event(kind, message))

        self.schedule_callbacks(request, post_receipts)

    def receipt_event(self, kind: str, message: Message) -> dict[str, Any]:
        """One `messaging` item: a delivery names its message ids, a read only has a watermark."""
        now = int(time.time() * 1000)
        details: dict[str, Any] = {"watermark": now}
        if kind == "delivery":
            details["mids"] = [message["message_id"]]
        return {
            "sender": {"id": message["recipient_id"]},
            "recipient": {"id": self.page_id},
            "timestamp": now,
            kind: details,
        }

    def signed_body(self, messaging: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        payload = {
            "object": "page",
            "entry": [{"id": self.page_id, "time": int(time.time() * 1000), "messaging": messaging}],
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hub_signature(self.app_secret, body),
            "X-Hub-Signature": "sha1=" + hub_signature(self.app_secret, body, hashlib.sha1),
        }
        return body, headers

    async def post_event(self, session: aiohttp.ClientSession, url: str, event: dict[str, Any]) -> Callback:
        body, headers = self.signed_body([event])
        kind = next(k for k in ("delivery", "read", "message") if k in event)
        return await self.post_callback(session, url, body=body, headers=headers, kind=kind)

    def post_receipt(self, message_id: str, kind: str) -> Callback:
        """From a test: post a `delivery` or `read` event for an accepted message now."""
        [message] = [m for m in self.received if m["message_id"] == message_id] or [None]
        if message is None or not self.webhook_url:
            raise ValueError(f"No accepted message {message_id}, or no webhook_url.")
        url = self.webhook_url
        return self.run_on_server_loop(lambda session: self.post_event(session, url, self.receipt_event(kind, message)))

    def send_inbound(self, *, psid: str, text: str) -> Callback:
        """From a test: a person writes to the page."""
        now = int(time.time() * 1000)
        event = {
            "sender": {"id": psid},
            "recipient": {"id": self.page_id},
            "timestamp": now,
            "message": {"mid": "m_" + secrets.token_urlsafe(32), "text": text},
        }
        url = self.webhook_url
        return self.run_on_server_loop(lambda session: self.post_event(session, url, event))
