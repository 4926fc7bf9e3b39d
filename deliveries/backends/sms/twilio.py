"""SMS and MMS through Twilio's Messages API with the official `twilio` client.

The client's default HTTP client has no timeout, so we always give it one. TWILIO_API_BASE_URL points the real
client at another host (the fake Twilio server in development and tests) by rewriting each request's URL.
Every message asks Twilio for status callbacks at our /webhooks/twilio/status/, with our message id and attempt
in the (signed) URL, so a receipt finds its message even before the worker has stored Twilio's SID.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import threading
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import (
    MessageInstance,
    MessageList,  # noqa: F401 - loaded lazily otherwise, per process
)

from ...exceptions import BackendConfigurationError, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from .. import twilio_errors
from ..base import BaseBackend, OutgoingMessage, SendResult
from ..curl import HttpCallError, http_call

TWILIO_API_HOST = "https://api.twilio.com"

logger = logging.getLogger(__name__)

# The twilio client logs every request and response at INFO; that is noise at thousands a second.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
logging.getLogger("twilio.async_http_client").setLevel(logging.WARNING)


def rebase(url: str, base_url: str) -> str:
    """A URL meant for api.twilio.com, sent to `base_url` instead, keeping path and query as they are."""
    if base_url != TWILIO_API_HOST and url.startswith(TWILIO_API_HOST):
        return base_url + url[len(TWILIO_API_HOST) :]
    return url


class RebasedTwilioHttpClient(TwilioHttpClient):
    """Sends requests meant for api.twilio.com to `base_url` instead, keeping path, form and auth as they are."""

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        if self.session is not None:
            self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    def request(self, method, url, *args, **kwargs):
        return super().request(method, rebase(url, self.base_url), *args, **kwargs)


class CurlTwilioHttpClient(AsyncHttpClient):
    """The twilio client's async transport on libcurl (deliveries.backends.curl), rebased like
    RebasedTwilioHttpClient: each request is an HttpCall, run with the others in flight by the call pool's
    CallDriver. The form is encoded and the basic-auth header built here, once per call and once per client."""

    def __init__(self, base_url: str, *, timeout: float):
        super().__init__(logger=logging.getLogger("twilio.async_http_client"), is_async=True, timeout=timeout)
        self.base_url = base_url.rstrip("/")

    async def request(
        self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = self._authorization(*auth)
        body = None
        if data:
            body = urlencode(data, doseq=True).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        url = rebase(url, self.base_url)
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request({"method": method, "url": url, "params": params, "data": data, "headers": headers})
        call = await http_call(method, url, body=body, headers=headers, timeout=timeout or self.timeout)
        # Twilio's answer headers are not read by the message calls we make, so they are not collected.
        response = Response(call.status, call.text, {})
        if self.logger.isEnabledFor(logging.INFO):
            self.log_response(call.status, response)
        return response

    @functools.cache  # noqa: B019 - one client per batch, one pair of credentials
    def _authorization(self, username: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


@functools.cache
def status_callback_path() -> str:
    """Our status webhook's path. Resolved once per process (run_worker does it before forking): a job that
    resolves it itself loads the whole URLconf first, every view, the API and its schema."""
    return reverse("webhooks:twilio-status")


def status_callback_url(message: OutgoingMessage) -> str:
    """Where Twilio posts this message's status changes. Twilio signs the whole URL, query string included."""
    # Two integers need no quoting (urlencode's generic path was a thirtieth of a call's CPU).
    query = f"message={int(message.id)}&attempt={int(message.attempt)}"
    return f"{settings.PUBLIC_BASE_URL}{status_callback_path()}?{query}"


class SmsBackend(BaseBackend):
    provider_name = "twilio"
    # Twilio's address prefix for the channel ("whatsapp:"); SMS has none.
    address_prefix = ""
    backend_setting = "SMS_BACKEND=twilio"
    from_setting = "TWILIO_FROM_NUMBER"
    service_setting = "TWILIO_MESSAGING_SERVICE_SID"

    def __init__(self, **options):
        super().__init__(**options)
        self.account_sid = options.get("account_sid", settings.TWILIO_ACCOUNT_SID)
        self.auth_token = options.get("auth_token", settings.TWILIO_AUTH_TOKEN)
        self.from_number = options.get("from_number", getattr(settings, self.from_setting))
        self.messaging_service_sid = options.get("messaging_service_sid", getattr(settings, self.service_setting))
        self.base_url = options.get("base_url", settings.TWILIO_API_BASE_URL)
        self.timeout = options.get("timeout", settings.TWILIO_TIMEOUT)
        if not (self.account_sid and self.auth_token):
            raise BackendConfigurationError(f"{self.backend_setting} needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.")
        if not (self.from_number or self.messaging_service_sid):
            raise BackendConfigurationError(
                f"{self.backend_setting} needs {self.from_setting} or {self.service_setting}."
            )
        self._local = threading.local()

    def address(self, value: str) -> str:
        """A number as Twilio wants it on this channel."""
        if not self.address_prefix or value.startswith(self.address_prefix):
            return value
        return self.address_prefix + value

    def _client(self) -> Client:
        # One client (one HTTP session) per thread: requests sessions are not guaranteed thread-safe.
        client = getattr(self._local, "client", None)
        if client is None:
            http_client = RebasedTwilioHttpClient(self.base_url, timeout=self.timeout)
            client = Client(self.account_sid, self.auth_token, http_client=http_client)
            self._local.client = client
        return client

    def build_request(self, message: OutgoingMessage) -> dict[str, Any]:
        """The arguments of `client.messages.create()`. A per-message sender (a number or a Messaging Service
        SID) wins over the configured one; a configured Messaging Service wins over a configured number."""
        params: dict[str, Any] = {
            "to": self.address(message.recipient),
            "status_callback": status_callback_url(message),
        }
        if message.body:
            params["body"] = message.body
        if message.media_urls:
            params["media_url"] = list(message.media_urls)
        if message.content_sid:
            params["content_sid"] = message.content_sid
            if message.content_variables:
                params["content_variables"] = json.dumps(message.content_variables)
        sender = message.sender or self.messaging_service_sid or self.from_number
        if MESSAGING_SERVICE_SID.match(sender):
            params["messaging_service_sid"] = sender
        else:
            params["from_"] = self.address(sender)
        return params

    # The sync client raises requests' errors when Twilio cannot be reached, the async one (on libcurl) HttpCallError.
    call_errors = (TwilioException, requests.RequestException, HttpCallError)

    def post(self, request: dict[str, Any]) -> MessageInstance:
        return self._client().messages.create(**request)

    # The async client: its calls run together on the call pool's CallDriver, hundreds in flight.
    supports_async = True

    def _async_client(self) -> Client:
        client = getattr(self, "_curl_client", None)
        if client is None:
            http_client = CurlTwilioHttpClient(self.base_url, timeout=self.timeout)
            client = self._curl_client = Client(self.account_sid, self.auth_token, http_client=http_client)
        return client

    async def post_async(self, request: dict[str, Any]) -> MessageInstance:
        return await self._async_client().messages.create_async(**request)

    def parse_response(self, message: OutgoingMessage, response: MessageInstance) -> SendResult:
        return self.result(message, response.sid, provider_status=response.status or "")

    reports_prices = True

    def fetch_price(self, provider_message_id: str) -> tuple[Decimal | None, str]:
        """The message resource's `price` (Twilio reports it negative, a charge: "-0.00750") and `price_unit`;
        null until Twilio has the carrier's figure, usually minutes after delivery."""
        try:
            resource = self._client().messages(provider_message_id).fetch()
        except self.call_errors as error:
            raise self.error_for(error) from error
        if resource.price in (None, ""):
            return None, ""
        try:
            price = abs(Decimal(resource.price))
        except InvalidOperation:
            logger.warning(
                "Twilio gave message %s a price that is not a number: %r", provider_message_id, resource.price
            )
            return None, ""
        return price, (resource.price_unit or "").upper()

    def error_for(self, error: Exception) -> DeliveryError:
        """Twilio's refusal as our error (permanent or worth retrying, with its reason), or a failure to reach it."""
        if isinstance(error, TwilioRestException):
            reason = twilio_errors.reason_for(error.code, fallback=error.msg)
            error_class = (
                TransientDeliveryError
                if twilio_errors.is_transient(error.code, error.status)
                else PermanentDeliveryError
            )
            return error_class(
                reason,
                code=error.code or error.status,
                provider=self.provider_name,
                status_code=error.status,
                suppress=twilio_errors.SUPPRESSING_CODES.get(error.code or 0, ""),
            )
        if isinstance(error, TwilioException):
            return TransientDeliveryError(f"Twilio error: {error}", provider=self.provider_name)
        if isinstance(error, HttpCallError):
            reason = "Could not reach Twilio: " + ("timed out" if error.timed_out else str(error))
        else:
            reason = f"Could not reach Twilio: {error.__class__.__name__}"
        return TransientDeliveryError(reason, provider=self.provider_name)
