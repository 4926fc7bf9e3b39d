"""Email through Django's EMAIL_BACKEND: anymail in production, console in development, locmem in tests.

Anymail's metadata carries our message id and attempt, so tracking events map back without guessing; the tag
names the category (`tidings-marketing`, `tidings-transactional`) so the ESP's own statistics stay useful.
Marketing email carries List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 one-click unsubscribe).
"""

from __future__ import annotations

import os
import smtplib
import threading
from typing import Any

import requests
from anymail.exceptions import AnymailError, AnymailRecipientsRefused, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.module_loading import import_string

from ...exceptions import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from ...shims import anymail as anymail_shim
from .. import email_provider_name
from ..base import BaseBackend, OutgoingMessage, SendResult
from ..curl import HttpCallError


def settle_proxies(connection) -> None:
    """Read the proxy settings from the environment once for the batch, not on every request.

    requests looks through the whole environment for proxies (and .netrc) on each call, which was a quarter of an
    email's CPU. For anymail's HTTP backends, the proxies that apply to the ESP's API (and a CA bundle) are taken
    now and the session stops looking; HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE work as before, read at the
    start of each batch.
    """
    session = getattr(connection, "session", None)
    api_url = getattr(connection, "api_url", None)
    if isinstance(session, requests.Session) and api_url:
        session.proxies.update(requests.utils.get_environ_proxies(api_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle and session.verify is True:
            session.verify = ca_bundle
        session.trust_env = False


class EmailBackend(BaseBackend):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.email_backend = options.get("email_backend", settings.EMAIL_BACKEND)
        self.provider_name = email_provider_name(self.email_backend)
        # anymail's HTTP API backends send through the call driver (deliveries.shims.anymail); SMTP, console and
        # locmem keep Django's own send on a thread pool.
        self.supports_async = anymail_shim.sends_through_driver(import_string(self.email_backend))
        self._local = threading.local()
        self._opened: list = []
        self._lock = threading.Lock()
        self._prepared: dict = {}  # requests' preparation of the ESP calls, reused (anymail_shim.request_parts)

    def _connection(self):
        # One open connection per thread for the whole batch: an unopened one makes anymail start (and end) a
        # new HTTP session, and a new TCP connection, for every single email.
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = get_connection(self.email_backend)
            if connection.open():
                with self._lock:
                    self._opened.append(connection)
                settle_proxies(connection)
            self._local.connection = connection
        return connection

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self._local = threading.local()
        self._prepared = {}

    def build_request(self, message: OutgoingMessage) -> EmailMultiAlternatives:
        """The email, on this thread's open connection, with our metadata and the unsubscribe headers."""
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body,
            from_email=message.sender or settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            connection=self._connection(),
        )
        if message.html_body:
            email.attach_alternative(message.html_body, "text/html")
        if message.unsubscribe_url:
            email.extra_headers["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            email.extra_headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        # Anymail extras, read off any EmailMessage (hence unknown to its type); other backends ignore them.
        email.metadata = {  # type: ignore[attr-defined]
            "tidings_message_id": str(message.id),
            "tidings_attempt": str(message.attempt),
        }
        email.tags = [f"tidings-{message.category}"]  # type: ignore[attr-defined]
        return email

    # What a failed hand-over to the email provider can raise, whichever way it was sent.
    call_errors = (AnymailError, requests.RequestException, smtplib.SMTPException, OSError, HttpCallError)

    def post(self, request: EmailMultiAlternatives) -> EmailMultiAlternatives:
        request.send()
        return request

    async def post_async(self, request: EmailMultiAlternatives) -> EmailMultiAlternatives:
        await anymail_shim.send(request.connection, request, self._prepared)
        return request

    def parse_response(self, message: OutgoingMessage, response: EmailMultiAlternatives) -> SendResult:
        status = getattr(response, "anymail_status", None)
        provider_id = (status.message_id if status else None) or ""
        return self.result(
            message,
            str(provider_id),
            provider_status=(next(iter(status.status), "") if status and status.status else "sent"),
        )

    def error_for(self, error: Exception) -> DeliveryError:
        """The provider's refusal as our error (permanent, or worth retrying), or a failure to reach it."""
        if isinstance(error, AnymailRecipientsRefused):
            return PermanentDeliveryError(
                f"The email provider refused the recipient: {error}", code="rejected", provider=self.provider_name
            )
        if isinstance(error, AnymailRequestsAPIError):
            status = error.status_code
            retry = status is None or status == 429 or status >= 500
            error_class = TransientDeliveryError if retry else PermanentDeliveryError
            return error_class(
                f"The email provider answered HTTP {status}: {error.describe_response() or error}"[:1000],
                code=status or "",
                provider=self.provider_name,
                status_code=status,
            )
        return TransientDeliveryError(
            f"Could not hand the email to the provider: {error}"[:1000], provider=self.provider_name
        )
