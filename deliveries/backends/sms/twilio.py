"""SMS through Twilio's Messages API with the official `twilio` client.

The client's default HTTP client has no timeout, so we always give it one. TWILIO_API_BASE_URL points the real
client at another host (the fake Twilio server in development and tests) by rewriting each request's URL.
"""

from __future__ import annotations

import logging
import threading

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageList  # noqa: F401 - loaded lazily otherwise, per process

from ...exceptions import BackendConfigurationError, PermanentDeliveryError, TransientDeliveryError
from .. import twilio_errors
from ..base import BaseBackend, OutgoingMessage, SendResult

TWILIO_API_HOST = "https://api.twilio.com"

# The twilio client logs every request and response at INFO; that is noise at thousands a second.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


class RebasedTwilioHttpClient(TwilioHttpClient):
    """Sends requests meant for api.twilio.com to `base_url` instead, keeping path, form and auth as they are."""

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        if self.session is not None:
            self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    def request(self, method, url, *args, **kwargs):
        if self.base_url != TWILIO_API_HOST and url.startswith(TWILIO_API_HOST):
            url = self.base_url + url[len(TWILIO_API_HOST) :]
        return super().request(method, url, *args, **kwargs)


class SmsBackend(BaseBackend):
    provider_name = "twilio"

    def __init__(self, **options):
        super().__init__(**options)
        self.account_sid = options.get("account_sid", settings.TWILIO_ACCOUNT_SID)
        self.auth_token = options.get("auth_token", settings.TWILIO_AUTH_TOKEN)
        self.from_number = options.get("from_number", settings.TWILIO_FROM_NUMBER)
        self.messaging_service_sid = options.get("messaging_service_sid", settings.TWILIO_MESSAGING_SERVICE_SID)
        self.base_url = options.get("base_url", settings.TWILIO_API_BASE_URL)
        self.timeout = options.get("timeout", settings.TWILIO_TIMEOUT)
        if not (self.account_sid and self.auth_token):
            raise BackendConfigurationError("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.")
        if not (self.from_number or self.messaging_service_sid):
            raise BackendConfigurationError(
                "SMS_BACKEND=twilio needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID."
            )
        self._local = threading.local()

    def _client(self) -> Client:
        # One client (one HTTP session) per thread: requests sessions are not guaranteed thread-safe.
        client = getattr(self._local, "client", None)
        if client is None:
            http_client = RebasedTwilioHttpClient(self.base_url, timeout=self.timeout)
            client = Client(self.account_sid, self.auth_token, http_client=http_client)
            self._local.client = client
        return client

    def build_params(self, message: OutgoingMessage) -> dict:
        params: dict = {"to": message.recipient, "body": message.body}
        if message.sender:
            params["from_"] = message.sender
        elif self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            params["from_"] = self.from_number
        return params

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            created = self._client().messages.create(**self.build_params(message))
        except TwilioRestException as error:
            reason = twilio_errors.reason_for(error.code, fallback=error.msg)
            error_class = (
                TransientDeliveryError
                if twilio_errors.is_transient(error.code, error.status)
                else PermanentDeliveryError
            )
            raise error_class(
                reason, code=error.code or error.status, provider=self.provider_name, status_code=error.status
            )
        except TwilioException as error:
            raise TransientDeliveryError(f"Twilio error: {error}", provider=self.provider_name) from error
        except requests.RequestException as error:
            raise TransientDeliveryError(
                f"Could not reach Twilio: {error.__class__.__name__}", provider=self.provider_name
            ) from error
        return SendResult(
            message_id=message.id,
            provider=self.provider_name,
            provider_message_id=created.sid,
            provider_status=created.status or "",
        )
