"""Request paths and query strings as they may be logged: no phone numbers, email addresses, unsubscribe tokens.

A request like `GET /api/v1/contacts/?phone=%2B14155550100` or `POST /unsubscribe/<token>/` would put a phone
number, an email address or a working unsubscribe link into every log it reaches. Query values are masked except
for the parameters known to carry nothing personal (filters on status, channel, pages, ids), and an unsubscribe
path keeps only its prefix. Used by gunicorn's access log (gunicorn_logging.py) and by Django's own request log.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

MASK = "***"

# Query parameters whose values are ids, enums, dates or page numbers: kept, because they make a log useful.
KEPT_QUERY_PARAMETERS = frozenset(
    {
        "attempt",
        "campaign",
        "category",
        "channel",
        "created_after",
        "created_before",
        "format",
        "hub.mode",
        "language",
        "lists",
        "message",
        "o",
        "ordering",
        "p",
        "page",
        "page_size",
        "parent",
        "priority",
        "slug",
        "status",
        "time_zone",
    }
)
# A parameter's name is kept when it looks like one; anything else (`?ada@example.com`) is masked as well.
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,63}")
# Paths whose rest is a secret: the signed unsubscribe token.
SECRET_PATH_PREFIXES = ("/unsubscribe/",)


def loggable_path(path: str) -> str:
    for prefix in SECRET_PATH_PREFIXES:
        if path.startswith(prefix) and len(path) > len(prefix):
            return f"{prefix}{MASK}/"
    return path


def loggable_query(query: str) -> str:
    pairs = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if not PARAMETER_NAME.fullmatch(name):
            pairs.append(f"{MASK}={MASK}")
        elif name in KEPT_QUERY_PARAMETERS:
            pairs.append(f"{name}={quote(value, safe='')}")
        else:
            pairs.append(f"{name}={MASK}")
    return "&".join(pairs)


def loggable_url(url: str) -> str:
    """A request target or a full URL (a Referer) with its path and query made loggable."""
    if not url or url == "-":
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=loggable_path(parts.path), query=loggable_query(parts.query), fragment=""))


# A path, full URL or request target inside a log message's argument ("Not Found: /unsubscribe/<token>/").
URL_IN_TEXT = re.compile(r"(?:https?://[^\s/\"]+)?/[^\s\"]*")


class RedactPaths(logging.Filter):
    """On django.request: "Bad Request: /unsubscribe/<token>/" and the like."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                URL_IN_TEXT.sub(lambda found: loggable_url(found.group()), arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True
