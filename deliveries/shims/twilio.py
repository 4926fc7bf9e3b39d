"""twilio 9.13: each answer's MessageInstance parses its three dates (RFC 2822, to the second) through email.utils, a
twentieth of a send's CPU. The answers of a second share them, so `deserialize.rfc2822_datetime` is replaced, at
import, by itself behind an lru_cache (a datetime cannot change). Switch: `twilio_dates`.
"""

from __future__ import annotations

import functools

from twilio.base import deserialize

from . import shim_enabled, version_check

version_check("twilio_dates", "twilio", ">=9.13,<9.14")

if shim_enabled("twilio_dates") and not hasattr(deserialize.rfc2822_datetime, "cache_info"):
    deserialize.rfc2822_datetime = functools.lru_cache(maxsize=256)(deserialize.rfc2822_datetime)
