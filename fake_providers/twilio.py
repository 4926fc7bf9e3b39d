"""A fake of Twilio's Messages API that the official `twilio` client can talk to unchanged.

Message creation is implemented with Twilio's validation, its magic test numbers and its error bodies:
https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
https://www.twilio.com/docs/iam/test-credentials#test-sms-messages-parameters-To

After accepting a message that has a StatusCallback, it posts that message's status changes there, form-encoded
and signed as Twilio signs them (X-Twilio-Signature), with a configurable outcome:
https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
https://www.twilio.com/docs/usage/webhooks/webhooks-security
It can also post an inbound message (a STOP reply, say) to an application's inbound webhook.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp
import phonenumbers
from aiohttp import BasicAuth, web
from multidict import MultiDictProxy

from .base import (
    RECEIVED_AT,
    Callback,
    CallbackSetting,
    FakeProvider,
    Message,
    check_choice,
    check_seconds,
    check_text,
)

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "ACfake" + "0" * 28
DEFAULT_AUTH_TOKEN = "fake-auth-token"  # noqa: S105 - a fake credential for a fake server
# The Messaging Service the fake account has; fetching any other answers 404, as Twilio does.
DEFAULT_MESSAGING_SERVICE_SID = "MG" + "0" * 32
MAX_BODY_LENGTH = 1600
CHANNEL_PREFIXES = ("whatsapp:",)

INVALID_MAGIC_NUMBER = "+15005550001"
MAGIC_NUMBER_PREFIX = "+1500555"
MAGIC_NUMBER_ERRORS: dict[str, tuple[int, str]] = {
    "+15005550002": (21612, "The 'To' phone number: {to}, is not currently reachable via SMS."),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "To number: {to}, is not a mobile number"),
}


# The status callbacks each outcome produces, in order. "read" is WhatsApp's; an SMS stops at delivered.
OUTCOMES: dict[str, tuple[str, ...]] = {
    "none": (),
    "sent": ("sent",),
    "delivered": ("sent", "delivered"),
    "undelivered": ("sent", "undelivered"),
    "failed": ("failed",),
    "read": ("sent", "delivered", "read"),
}
# The number a Messaging Service "picks" from its pool in callbacks.
SERVICE_SENDER = "+15005550006"


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """X-Twilio-Signature: the base64 HMAC-SHA1, keyed with the auth token, of the URL followed by every parameter
    name and value, sorted by name (and value). Written out here rather than borrowed from the twilio library, so
    tests of our validation are tests against an independent implementation."""
    payload = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# Price per segment (per message on WhatsApp) by the longest matching prefix of the number; "" matches any.
DEFAULT_PRICES: dict[str, str] = {"+1": "0.0079", "+44": "0.0400", "": "0.0500"}


@dataclasses.dataclass(frozen=True)
class TwilioCallbackSettings:
    """What happens to an accepted message, as its status callbacks tell it, and what its resource says it cost.

    outcome: none | sent | delivered | undelivered | failed | read (WhatsApp)
    error_code: Twilio's ErrorCode on undelivered and failed (30006: landline or unreachable carrier)
    callback_delay: seconds before each callback
    prices: number prefix -> price per segment (per message on WhatsApp), as a decimal string; "" for any number
    price_unit: the currency of the prices (Twilio's `price_unit`, "USD")
    price_after_fetches: how many fetches of a message answer `price: null` before the price shows (Twilio fills
      it in after delivery); -1: never
    """

    outcome: str = "delivered"
    error_code: int = 30006
    callback_delay: float = 0.05
    prices: dict[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_PRICES))
    price_unit: str = "USD"
    price_after_fetches: int = 1

    def __post_init__(self) -> None:
        check_choice("outcome", self.outcome, OUTCOMES)
        if isinstance(self.error_code, bool) or not isinstance(self.error_code, int):
            raise ValueError(f"error_code must be a Twilio error code (an integer), not {self.error_code!r}.")
        check_seconds("callback_delay", self.callback_delay)
        if not isinstance(self.prices, dict) or not all(
            isinstance(prefix, str) and _is_decimal(price) for prefix, price in self.prices.items()
        ):
            raise ValueError(f"prices must map number prefixes to decimal strings, not {self.prices!r}.")
        check_text("price_unit", self.price_unit)
        after = self.price_after_fetches
        if isinstance(after, bool) or not isinstance(after, int) or after < -1:
            raise ValueError(f"price_after_fetches must be an integer >= -1, not {after!r}.")


def _is_decimal(value: object) -> bool:
    try:
        return isinstance(value, str) and Decimal(value).is_finite()
    except InvalidOperation:
        return False


# GSM 03.38's basic set and its extension table (each extension character takes two septets).
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def segment_count(body: str) -> int:
    """How many segments Twilio bills a text as: 160 GSM-7 septets in one, 153 per part beyond; 70 UCS-2
    characters (UTF-16 units) in one, 67 per part beyond. Written out here, independent of the application's count."""
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in body):
        units, single, part = sum(2 if char in GSM7_EXTENSION else 1 for char in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    if units <= single:
        return 1
    return -(-units // part)


class TwilioError(Exception):
    """A request Twilio would refuse with HTTP 400 and this error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_message_sid() -> str:
    return "SM" + os.urandom(16).hex()  # 32 hex digits, as uuid4().hex but cheaper: the benchmarks make many


@functools.lru_cache(maxsize=2)
def _rfc2822(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))


def rfc2822_now() -> str:
    """Twilio's dates have whole seconds, so one formatting per second serves every message created in it."""
    return _rfc2822(int(time.time()))


def is_valid_phone_number(number: str) -> bool:
    """E.164 numbers phonenumbers accepts, plus Twilio's +1500555xxxx test range (except its 'invalid' number)."""
    if number == INVALID_MAGIC_NUMBER:
        return False
    if number.startswith(MAGIC_NUMBER_PREFIX) and len(number) == 12 and number[1:].isdigit():
        return True
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def without_channel(address: str) -> str:
    """'whatsapp:+1555...' -> '+1555...': channel addresses carry a phone number Twilio validates the same way."""
    for prefix in CHANNEL_PREFIXES:
        if address.startswith(prefix):
            return address[len(prefix) :]
    return address


def validate_message(form: MultiDictProxy[str]) -> None:
    """Raises TwilioError for the first problem Twilio would report, checked in Twilio's order."""
    to = form.get("To", "")
    if not to:
        raise TwilioError(21604, "A 'To' phone number is required.")
    if not (form.get("From") or form.get("MessagingServiceSid")):
        raise TwilioError(21603, "A 'From' phone number is required.")
    if not (form.get("Body") or form.getall("MediaUrl", []) or form.get("ContentSid")):
        raise TwilioError(21602, "Message body is required.")
    if len(form.get("Body", "")) > MAX_BODY_LENGTH:
        raise TwilioError(21617, f"The concatenated message body exceeds the {MAX_BODY_LENGTH} character limit.")
    number = without_channel(to)
    if not is_valid_phone_number(number):
        raise TwilioError(21211, f"The 'To' number {to} is not a valid phone number.")
    if number in MAGIC_NUMBER_ERRORS:
        code, template = MAGIC_NUMBER_ERRORS[number]
        raise TwilioError(code, template.format(to=to))


class FakeTwilio(FakeProvider):
    """Twilio's `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, authenticated with HTTP basic auth, and the
    harmless reads a smoke test makes: `GET /2010-04-01/Accounts/{AccountSid}.json` (the account) and the Messaging
    API's `GET /v1/Services/{ServiceSid}` (served here too: the client's messaging.twilio.com host, rebased)."""

    display_name = "Twilio"
    refusals: ClassVar[dict[int, tuple[int, str]]] = {
        401: (20003, "Authenticate"),
        429: (20429, "Too Many Requests"),
        500: (20500, "An internal server error has occurred"),
        503: (20503, "Service Unavailable"),
    }
    callback_settings_class = TwilioCallbackSettings

    outcome = CallbackSetting()
    error_code = CallbackSetting()
    callback_delay = CallbackSetting()
    prices = CallbackSetting()
    price_unit = CallbackSetting()
    price_after_fetches = CallbackSetting()

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        latency: float = 0.0,
        seed: int | None = None,
        messaging_service_sids: Iterable[str] = (DEFAULT_MESSAGING_SERVICE_SID,),
        **callback_settings: Any,
    ) -> None:
        super().__init__(latency=latency, seed=seed, **callback_settings)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messaging_service_sids = frozenset(messaging_service_sids)
        self.created_at = rfc2822_now()

    def add_provider_routes(self, app: web.Application) -> None:
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", self.create_message)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages/{{sid}}.json", self.fetch_message)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account_sid}}.json", self.fetch_account)
        app.router.add_get("/v1/Services/{service_sid}", self.fetch_messaging_service)

    def is_authorized(self, request: web.Request) -> bool:
        try:
            credentials = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            return False
        return (
            credentials.login == self.account_sid
            and credentials.password == self.auth_token
            # The Messaging API's paths carry no account: the credentials alone say whose it is.
            and request.match_info.get("account_sid", self.account_sid) == self.account_sid
        )

    def error_response(self, status: int, code: int, message: str) -> web.Response:
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return web.json_response(body, status=status)

    async def create_message(self, request: web.Request) -> web.Response:
        refusal = await self.refusal_for(request)
        if refusal is not None:
            return refusal
        form = await request.post()
        try:
            validate_message(form)
        except TwilioError as error:
            return self.error_response(400, error.code, error.message)
        message = self.record(
            {
                "sid": new_message_sid(),
                "to": form["To"],
                "from": form.get("From") or None,
                "messaging_service_sid": form.get("MessagingServiceSid") or None,
                "body": form.get("Body", ""),
                "media_urls": form.getall("MediaUrl", []),
                "status_callback": form.get("StatusCallback") or None,
                "content_sid": form.get("ContentSid") or None,
                "content_variables": form.get("ContentVariables") or None,
            },
            received_at=request[RECEIVED_AT],
        )
        settings = self.callback_settings
        statuses = [s for s in OUTCOMES[settings.outcome] if s != "read" or message["to"].startswith("whatsapp:")]
        if message["status_callback"] and statuses:  # outcome "none": no background task at all

            async def post_statuses(session: aiohttp.ClientSession) -> None:
                for status in statuses:
                    await asyncio.sleep(settings.callback_delay)
                    await self.post_status_callback(session, message, status, settings.error_code)

            self.schedule_callbacks(request, post_statuses)
        return web.json_response(self.message_resource(message), status=201)

    async def fetch_message(self, request: web.Request) -> web.Response:
        """A message resource, as `client.messages(sid).fetch()` reads it, with its price once the fake has
        "heard from the carrier" (after price_after_fetches fetches), or Twilio's 404 with code 20404."""
        refusal = await self.refusal_for(request)
        if refusal is not None:
            return refusal
        sid = request.match_info["sid"]
        settings = self.callback_settings
        with self._lock:
            message = next((m for m in self._messages if m["sid"] == sid), None)
            if message is not None:
                message["fetches"] = fetches = message.get("fetches", 0) + 1
        if message is None:
            uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
            return self.error_response(404, 20404, f"The requested resource {uri} was not found")
        resource = self.message_resource(message)
        statuses = [s for s in OUTCOMES[settings.outcome] if s != "read" or message["to"].startswith("whatsapp:")]
        if statuses:  # where its callbacks took it
            resource["status"] = statuses[-1]
        after = settings.price_after_fetches
        if after >= 0 and fetches > after:
            resource["price"] = self.price_of(message, settings)
            resource["price_unit"] = settings.price_unit
        return web.json_response(resource)

    def price_of(self, message: Message, settings: TwilioCallbackSettings) -> str | None:
        """The message's price as Twilio writes it: negative (a charge), five decimals ("-0.00790"); None when
        the price table has nothing for the number."""
        number = without_channel(message["to"])
        prefix = max((p for p in settings.prices if number.startswith(p)), key=len, default=None)
        if prefix is None:
            return None
        units = 1 if message["to"].startswith("whatsapp:") else segment_count(message["body"])
        return f"{-Decimal(settings.prices[prefix]) * units:.5f}"

    async def fetch_account(self, request: web.Request) -> web.Response:
        """The account resource, as `client.api.v2010.accounts(sid).fetch()` reads it."""
        refusal = await self.refusal_for(request)
        if refusal is not None:
            return refusal
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}"
        return web.json_response(
            {
                "auth_token": self.auth_token,
                "date_created": self.created_at,
                "date_updated": self.created_at,
                "friendly_name": "Tidings fake account",
                "owner_account_sid": self.account_sid,
                "sid": self.account_sid,
                "status": "active",
                "subresource_uris": {
                    "messages": f"{uri}/Messages.json",
                    "incoming_phone_numbers": f"{uri}/IncomingPhoneNumbers.json",
                },
                "type": "Full",
                "uri": f"{uri}.json",
            }
        )

    async def fetch_messaging_service(self, request: web.Request) -> web.Response:
        """A Messaging Service (v1, ISO 8601 dates), or Twilio's 404 with code 20404 for one the account lacks."""
        refusal = await self.refusal_for(request)
        if refusal is not None:
            return refusal
        sid = request.match_info["service_sid"]
        if sid not in self.messaging_service_sids:
            return self.error_response(404, 20404, f"The requested resource /Services/{sid} was not found")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        url = f"https://messaging.twilio.com/v1/Services/{sid}"
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "sid": sid,
                "friendly_name": "Tidings fake service",
                "date_created": now,
                "date_updated": now,
                "inbound_request_url": None,
                "inbound_method": "POST",
                "fallback_url": None,
                "fallback_method": "POST",
                "status_callback": None,
                "sticky_sender": True,
                "mms_converter": True,
                "smart_encoding": True,
                "scan_message_content": "inherit",
                "fallback_to_long_code": True,
                "area_code_geomatch": True,
                "synchronous_validation": True,
                "validity_period": 14400,
                "usecase": "notifications",
                "us_app_to_person_registered": False,
                "use_inbound_webhook_on_number": True,
                "url": url,
                "links": {"phone_numbers": f"{url}/PhoneNumbers", "alpha_senders": f"{url}/AlphaSenders"},
            }
        )

    def status_params(self, message: Message, status: str, error_code: int | None) -> dict[str, str]:
        """The form Twilio posts to a StatusCallback."""
        sender = message["from"] or SERVICE_SENDER
        if message["to"].startswith("whatsapp:") and not sender.startswith("whatsapp:"):
            sender = "whatsapp:" + sender
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": sender,
            "To": message["to"],
            "MessageSid": message["sid"],
            "SmsSid": message["sid"],
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if status in ("undelivered", "failed") and error_code:
            params["ErrorCode"] = str(error_code)
        if message["to"].startswith("whatsapp:"):
            params.update(
                ChannelPrefix="whatsapp", ChannelInstallSid="XE" + "0" * 32, ChannelToAddress=message["to"][9:]
            )
        elif status == "delivered":
            params["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
        return params

    def signed_form(self, url: str, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(self.auth_token, url, params.items()),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        return urlencode(params).encode(), headers

    async def post_status_callback(
        self, session: aiohttp.ClientSession, message: Message, status: str, error_code: int | None = None
    ) -> Callback:
        url = message["status_callback"]
        body, headers = self.signed_form(url, self.status_params(message, status, error_code))
        return await self.post_callback(
            session, url, body=body, headers=headers, kind="status", sid=message["sid"], message_status=status
        )

    def post_status(self, sid: str, status: str, error_code: int | None = None) -> Callback:
        """From a test: post one status callback for an accepted message now, whatever the outcome setting says
        (to send callbacks out of order, say). Returns the recorded callback."""
        [message] = [m for m in self.received if m["sid"] == sid] or [None]
        if message is None or not message["status_callback"]:
            raise ValueError(f"No accepted message {sid} with a StatusCallback.")
        return self.run_on_server_loop(lambda session: self.post_status_callback(session, message, status, error_code))

    def send_inbound(self, url: str, *, from_: str, to: str, body: str, media_urls: Iterable[str] = ()) -> Callback:
        """From a test: a person texts one of our numbers; Twilio posts the message to the number's inbound URL."""
        media = list(media_urls)
        sid = new_message_sid()
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "From": from_,
            "To": to,
            "Body": body,
            "NumSegments": "1",
            "NumMedia": str(len(media)),
            **{f"MediaUrl{i}": media_url for i, media_url in enumerate(media)},
        }
        form, headers = self.signed_form(url, params)
        return self.run_on_server_loop(
            lambda session: self.post_callback(session, url, body=form, headers=headers, kind="inbound", sid=sid)
        )

    def message_resource(self, message: Message) -> dict:
        """The JSON Twilio answers a create with, as the client deserializes it into a MessageInstance."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message['sid']}"
        now = rfc2822_now()
        via_messaging_service = message["messaging_service_sid"] is not None
        return {
            "sid": message["sid"],
            "account_sid": self.account_sid,
            "to": message["to"],
            "from": None if via_messaging_service else message["from"],
            "messaging_service_sid": message["messaging_service_sid"],
            "body": message["body"],
            "status": "accepted" if via_messaging_service else "queued",
            "num_segments": str(segment_count(message["body"]) if message["body"] else 1),
            "num_media": str(len(message["media_urls"])),
            "direction": "outbound-api",
            "api_version": API_VERSION,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": f"{uri}.json",
            "subresource_uris": {"media": f"{uri}/Media.json"},
        }
