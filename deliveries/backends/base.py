"""The provider backend interface, shaped like Django's email backends.

A backend sends one message at a time through `send()`; the worker's call pool
(deliveries.sending.call_pool.CallPool) runs those calls concurrently in a thread pool, so one job can carry
hundreds of messages while each keeps its own result. A backend whose provider client can also do it without a
thread per call sets `supports_async` and implements `post_async()`, a coroutine whose only awaits are HTTP
requests made with `deliveries.backends.curl.http_call()`: the pool then runs `send_async()` with hundreds of
calls in flight on libcurl's multi interface, for a fraction of the CPU (docs/performance.md). As in anymail, the
base class owns the send loop and each backend fills in named hooks (build_request, post, parse_response,
error_for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..exceptions import DeliveryError


@dataclass(frozen=True)
class OutgoingMessage:
    """What a backend needs to send one message; built from a Message row by the sending service."""

    id: int
    channel: str
    recipient: str
    sender: str = ""
    subject: str = ""
    body: str = ""
    html_body: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    category: str = "marketing"
    # Which send attempt this is: providers echo it back (callback URL, metadata) so a late report about an
    # earlier attempt never moves the current one.
    attempt: int = 1
    media_urls: tuple[str, ...] = ()
    content_sid: str = ""
    content_variables: dict[str, str] = field(default_factory=dict)
    # Where the recipient unsubscribes with one click (RFC 8058); set for marketing email.
    unsubscribe_url: str = ""


@dataclass
class SendResult:
    """The outcome of one send: the provider's id and status, or the error that stopped it."""

    message_id: int
    provider: str
    provider_message_id: str = ""
    provider_status: str = ""
    error: DeliveryError | None = None
    response: dict[str, Any] = field(default_factory=dict)
    # How long the provider call took, in seconds (set by the call pool, for deliveries.instruments).
    call_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class BaseBackend:
    """A provider backend: the send loop is here, each backend fills in the hooks it calls.

    `send()` (and `send_async()` for a backend with `supports_async`) runs, for one message:
    `build_request(message)`, then `post(request)` (or `await post_async(request)`), then
    `parse_response(message, response)`; an exception of `call_errors` raised by the post becomes
    `error_for(exception)`, raised from it. Both loops do the same with the same hooks, so the sync and async
    paths cannot drift apart. Settings are read in `__init__`, which raises BackendConfigurationError when one
    the backend needs is missing.
    """

    # The key of the provider's circuit breaker and send rates (deliveries.backends.provider_for).
    provider_name = "base"
    # True when `post_async()` is implemented: the call pool then runs `send_async()` on its CallDriver.
    supports_async = False
    # What `post()` / `post_async()` raise when the provider refused the message or could not be reached; any
    # other exception is a bug, which the call pool retries later as an unexpected error.
    call_errors: tuple[type[Exception], ...] = ()

    def __init__(self, **options: Any) -> None:
        self.options = options

    def open(self) -> None:
        """Prepare connections before a batch. Optional."""

    def close(self) -> None:
        """Release connections after a batch. Optional."""

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message and return its result, or raise a DeliveryError subclass. Called from several threads
        at once: the hooks must be thread-safe."""
        request = self.build_request(message)
        try:
            response = self.post(request)
        except self.call_errors as error:
            raise self.error_for(error) from error
        return self.parse_response(message, response)

    async def send_async(self, message: OutgoingMessage) -> SendResult:
        """`send()` as a coroutine, for backends with `supports_async`: the same hooks, results and errors."""
        request = self.build_request(message)
        try:
            response = await self.post_async(request)
        except self.call_errors as error:
            raise self.error_for(error) from error
        return self.parse_response(message, response)

    # --- the hooks ----------------------------------------------------------------------------------------------
    def build_request(self, message: OutgoingMessage) -> Any:
        """What the provider's call takes for this message (a form, a JSON payload, an EmailMessage): everything
        the provider needs, nothing sent yet. May raise PermanentDeliveryError for a message it cannot express."""
        return message

    def post(self, request: Any) -> Any:
        """Hand `request` to the provider and return its answer, as the provider's client gives it. Raises one of
        `call_errors` when the provider refuses or cannot be reached. Must be safe to call from several threads."""
        raise NotImplementedError

    async def post_async(self, request: Any) -> Any:
        """`post()` as a coroutine whose only awaits are HTTP requests made with
        `deliveries.backends.curl.http_call()` (the call pool's driver runs nothing else)."""
        raise NotImplementedError

    def parse_response(self, message: OutgoingMessage, response: Any) -> SendResult:
        """The provider's answer to an accepted message as a SendResult (its id for the message, its status)."""
        raise NotImplementedError

    def error_for(self, error: Exception) -> DeliveryError:
        """One of `call_errors` as our error: TransientDeliveryError only when trying again could succeed (a
        timeout, throttling, the provider's 5xx), PermanentDeliveryError with a reason a person can read when it
        never will (an invalid number, an unsubscribed recipient, rejected content)."""
        raise NotImplementedError

    # True when fetch_price() asks the provider: the price job (deliveries.services.actual_prices) leaves the
    # messages of a backend without it alone.
    reports_prices = False

    def fetch_price(self, provider_message_id: str) -> tuple[Decimal | None, str]:
        """What the provider billed for a message it accepted: (a positive amount, its ISO 4217 currency in upper
        case), or (None, "") while it has not said (Twilio fills the price in after delivery) or when it never
        will. Raises a DeliveryError, as error_for() makes them, when the provider could not answer. This default
        is for backends whose provider reports no price (console, locmem)."""
        return None, ""

    def result(self, message: OutgoingMessage, provider_message_id: str, **fields: Any) -> SendResult:
        """A SendResult for this message from this backend's provider."""
        return SendResult(
            message_id=message.id, provider=self.provider_name, provider_message_id=provider_message_id, **fields
        )
