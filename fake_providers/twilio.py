"""A fake of Twilio's Messages API that the official `twilio` client can talk to unchanged.

Only message creation is implemented, with Twilio's validation, its magic test numbers and its error bodies:
https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
https://www.twilio.com/docs/iam/test-credentials#test-sms-messages-parameters-To
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import ClassVar

import phonenumbers
from aiohttp import BasicAuth, web
from multidict import MultiDictProxy

from .base import FakeProvider, Message

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "ACfake" + "0" * 28
DEFAULT_AUTH_TOKEN = "fake-auth-token"  # noqa: S105 - a fake credential for a fake server
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


class TwilioError(Exception):
    """A request Twilio would refuse with HTTP 400 and this error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_message_sid() -> str:
    return "SM" + uuid.uuid4().hex


def rfc2822_now() -> str:
    return format_datetime(datetime.now(UTC))


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
    if not (form.get("Body") or form.getall("MediaUrl", [])):
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
    """Twilio's `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, authenticated with HTTP basic auth."""

    display_name = "Twilio"
    refusals: ClassVar[dict[int, tuple[int, str]]] = {
        401: (20003, "Authenticate"),
        429: (20429, "Too Many Requests"),
        500: (20500, "An internal server error has occurred"),
        503: (20503, "Service Unavailable"),
    }

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        latency: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(latency=latency, seed=seed)
        self.account_sid = account_sid
        self.auth_token = auth_token

    def add_provider_routes(self, app: web.Application) -> None:
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", self.create_message)

    def is_authorized(self, request: web.Request) -> bool:
        try:
            credentials = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            return False
        return (
            credentials.login == self.account_sid
            and credentials.password == self.auth_token
            and request.match_info.get("account_sid") == self.account_sid
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
            }
        )
        return web.json_response(self.message_resource(message), status=201)

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
            "num_segments": "1",
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
