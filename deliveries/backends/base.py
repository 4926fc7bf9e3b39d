"""The provider backend interface, shaped like Django's email backends.

A backend sends one message at a time through `send()`; the worker's call pool
(deliveries.sending.call_pool.CallPool) runs those calls concurrently in a thread pool, so one job can carry
hundreds of messages while each keeps its own result. A backend whose provider client can also do it without a
thread per call sets `supports_async` and implements `send_async()`, a coroutine whose only awaits are HTTP
requests made with `deliveries.backends.curl.http_call()`: the pool then keeps hundreds of calls in flight on
libcurl's multi interface, for a fraction of the CPU (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

    @property
    def ok(self) -> bool:
        return self.error is None


class BaseBackend:
    """Subclasses set `provider_name` and implement `send()`."""

    provider_name = "base"
    supports_async = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def open(self) -> None:
        """Prepare connections before a batch. Optional."""

    def close(self) -> None:
        """Release connections after a batch. Optional."""

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message and return its result, or raise a DeliveryError subclass.

        Must be safe to call from several threads at once. Raise TransientDeliveryError only when trying again
        could succeed, PermanentDeliveryError when it never will.
        """
        raise NotImplementedError

    async def send_async(self, message: OutgoingMessage) -> SendResult:
        """`send()` as a coroutine, for backends with `supports_async`. Same result and errors. Its HTTP requests
        go through `deliveries.backends.curl.http_call()`: the call pool's driver runs nothing else."""
        raise NotImplementedError
