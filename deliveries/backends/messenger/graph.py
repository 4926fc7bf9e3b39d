"""Facebook Messenger through Meta's Send API: `POST {MESSENGER_GRAPH_API_URL}/{version}/me/messages`.

https://developers.facebook.com/docs/messenger-platform/reference/send-api/
The recipient is the person's page-scoped id (PSID); the page is the one the access token belongs to. Delivery
and read receipts come back to /webhooks/messenger/ (deliveries/webhooks/messenger.py).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from typing import Any

import requests
from django.conf import settings

from ...exceptions import BackendConfigurationError, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from ..base import BaseBackend, OutgoingMessage, SendResult

# Graph API error codes and subcodes worth naming. https://developers.facebook.com/docs/messenger-platform/error-codes
TRANSIENT_CODES = {
    1: "Meta had an unknown error; try again.",
    2: "Meta's service is temporarily unavailable.",
    4: "Too many calls from this app (rate limited).",
    32: "Too many calls for this page (rate limited).",
    613: "Calls to the Send API exceeded the rate limit.",
    1200: "Meta could not send the message for now; try again later.",
}
PERMANENT_CODES = {
    10: "The app may not send this message (outside the 24-hour window it needs a message tag).",
    100: "Meta refused a parameter of the message.",
    190: "The page access token is invalid or has expired.",
    200: "The app lacks the permission to message this person.",
    551: "This person isn't available right now (they blocked the page or left Messenger).",
    2018001: "No person with this PSID has talked to the page.",
    2018108: "This person cannot receive messages from the page.",
    2018278: "Outside the 24-hour messaging window: a message tag is needed.",
}


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the token with the app secret, which Meta asks for when "Require App Secret" is on."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


class GraphApiRefusal(Exception):
    """The Send API answered, but not with a message id: `status` is the HTTP status, `error` Meta's error object."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"Meta's Send API answered HTTP {status}: {error}")
        self.status = status
        self.error = error


class MessengerBackend(BaseBackend):
    provider_name = "messenger"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.access_token = options.get("access_token", settings.MESSENGER_PAGE_ACCESS_TOKEN)
        self.app_secret = options.get("app_secret", settings.MESSENGER_APP_SECRET)
        self.base_url = options.get("base_url", settings.MESSENGER_GRAPH_API_URL).rstrip("/")
        self.api_version = options.get("api_version", settings.MESSENGER_GRAPH_API_VERSION)
        self.messaging_type = options.get("messaging_type", settings.MESSENGER_MESSAGING_TYPE)
        self.message_tag = options.get("message_tag", settings.MESSENGER_MESSAGE_TAG)
        self.timeout = options.get("timeout", settings.MESSENGER_TIMEOUT)
        if not self.access_token:
            raise BackendConfigurationError("MESSENGER_BACKEND=graph needs MESSENGER_PAGE_ACCESS_TOKEN.")
        if self.messaging_type == "MESSAGE_TAG" and not self.message_tag:
            raise BackendConfigurationError("MESSENGER_MESSAGING_TYPE=MESSAGE_TAG needs MESSENGER_MESSAGE_TAG.")
        self._local = threading.local()

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.api_version}/me/messages"

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def build_request(self, message: OutgoingMessage) -> dict[str, Any]:
        """The Send API's JSON body for this message."""
        payload: dict[str, Any] = {
            "recipient": {"id": message.recipient},
            "messaging_type": self.messaging_type,
            "message": {"text": message.body},
        }
        if self.messaging_type == "MESSAGE_TAG":
            payload["tag"] = self.message_tag
        return payload

    call_errors = (requests.RequestException, GraphApiRefusal)

    def post(self, request: dict[str, Any]) -> dict[str, Any]:
        """Meta's answer to an accepted message (with its `message_id`); GraphApiRefusal for any other answer."""
        params = {"access_token": self.access_token}
        if self.app_secret:
            params["appsecret_proof"] = appsecret_proof(self.access_token, self.app_secret)
        response = self._session().post(self.url, params=params, json=request, timeout=self.timeout)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("message_id"):
            return body
        raise GraphApiRefusal(response.status_code, body.get("error") or {})

    def parse_response(self, message: OutgoingMessage, response: dict[str, Any]) -> SendResult:
        return self.result(message, response["message_id"], provider_status="accepted", response=response)

    def error_for(self, error: Exception) -> DeliveryError:
        """Meta's refusal sorted by its code and subcode (permanent or worth retrying), or a failure to reach it."""
        if not isinstance(error, GraphApiRefusal):
            return TransientDeliveryError(
                f"Could not reach Meta's Send API: {error.__class__.__name__}", provider=self.provider_name
            )
        status, details = error.status, error.error
        code, subcode = details.get("code"), details.get("error_subcode")
        known = PERMANENT_CODES.get(subcode or 0) or TRANSIENT_CODES.get(code or 0) or PERMANENT_CODES.get(code or 0)
        reason = known or details.get("message") or f"Meta's Send API answered HTTP {status}."
        transient = code in TRANSIENT_CODES or details.get("is_transient") is True or status == 429 or status >= 500
        error_class = TransientDeliveryError if transient and subcode not in PERMANENT_CODES else PermanentDeliveryError
        return error_class(reason, code=subcode or code or status, provider=self.provider_name, status_code=status)
