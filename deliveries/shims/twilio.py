"""twilio 9.13: two per-call costs of the client taken out of the send path.

- `twilio_dates`: each answer's MessageInstance parses its three dates (RFC 2822, to the second) through
  email.utils, a twentieth of a send's CPU. The answers of a second share them, so `deserialize.rfc2822_datetime` is
  replaced, at import, by itself behind an lru_cache (a datetime cannot change).
- `twilio_headers`: `Client.get_headers` formats the User-Agent from the platform on every call though the headers
  depend only on the method (and the client's fixed extensions): `TwilioClient` builds them once per method.
"""

from __future__ import annotations

import functools

from twilio.base import deserialize
from twilio.rest import Client

from . import shim_enabled, version_check

SUPPORTED = ">=9.13,<9.14"
version_check("twilio_dates", "twilio", SUPPORTED)
version_check("twilio_headers", "twilio", SUPPORTED)

if shim_enabled("twilio_dates") and not hasattr(deserialize.rfc2822_datetime, "cache_info"):
    deserialize.rfc2822_datetime = functools.lru_cache(maxsize=256)(deserialize.rfc2822_datetime)


class CachedHeadersClient(Client):
    """The twilio client, with its request headers built once per method instead of on every call."""

    @functools.cache  # noqa: B019 - a handful of methods per client
    def _static_headers(self, method: str) -> tuple[tuple[str, str], ...]:
        return tuple(super().get_headers(method, {}).items())

    def get_headers(self, method, headers):
        if headers:
            return super().get_headers(method, headers)
        return dict(self._static_headers(method))


# The client class the async send path uses: twilio's own when the shim is off.
TwilioClient: type[Client] = CachedHeadersClient if shim_enabled("twilio_headers") else Client
