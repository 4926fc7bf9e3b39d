"""One error tree decides what happens after a failed send.

Backends translate their provider's errors into these (`BaseBackend.error_for`). The sending service only asks:
transient (try again later) or permanent (fail now, with a reason a person can read)? Like anymail's, the classes
also inherit the built-in they resemble, so Django code that catches ImproperlyConfigured catches ours too.

    DeliveryError
    ├── TransientDeliveryError
    └── PermanentDeliveryError
        └── BackendConfigurationError (also ImproperlyConfigured)
"""

from django.core.exceptions import ImproperlyConfigured


class DeliveryError(Exception):
    """A send did not succeed. `code` is the provider's error code; `reason` is for people."""

    transient = False

    def __init__(
        self,
        reason: str,
        *,
        code: str | int = "",
        provider: str = "",
        status_code: int | None = None,
        suppress: str = "",
    ):
        super().__init__(reason)
        self.reason = reason
        self.code = str(code) if code not in (None, "") else ""
        self.provider = provider
        self.status_code = status_code
        # A Suppression.Reason when the provider says the recipient must not be messaged again (Twilio 21610).
        self.suppress = suppress


class TransientDeliveryError(DeliveryError):
    """Worth trying again: timeouts, connection errors, throttling (HTTP 429), provider 5xx."""

    transient = True


class PermanentDeliveryError(DeliveryError):
    """Will never succeed as is: invalid number or address, unsubscribed recipient, rejected content."""


class BackendConfigurationError(PermanentDeliveryError, ImproperlyConfigured):
    """A provider backend is missing settings it needs (credentials, a sender). Raised when the backend is made;
    the messages it would have sent fail at once (code `configuration`): retrying cannot help until a person fixes
    the settings, and the provider's circuit breaker does not count it (the provider did nothing wrong)."""

    def __init__(self, reason: str, *, code: str | int = "configuration", provider: str = "", **fields) -> None:
        super().__init__(reason, code=code, provider=provider, **fields)
