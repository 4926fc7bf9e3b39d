"""What may reach a log: no full phone number, email address, Messenger id or unsubscribe token.

Recipients: `mask_recipient()` is how our own log lines show one (+1415•••0100, a•••@example.com, •••5342), and
`RedactSensitiveData`, a filter on every log handler, masks whatever still looks like one in a record's message,
exception and stack text, so a library's line (twilio, anymail, urllib3, rq, Django's SQL log) cannot leak one;
it masks secrets a client puts in a URL's query (urllib3 logs Meta's `access_token=` at DEBUG) as well.

Requests: a request like `GET /api/v1/contacts/?phone=%2B14155550100` or `POST /unsubscribe/<token>/` would put a phone
number, an email address or a working unsubscribe link into every log it reaches. Query values are masked except
for the parameters known to carry nothing personal (filters on status, channel, pages, ids), and an unsubscribe
path keeps only its prefix. Used by gunicorn's access log (gunicorn_logging.py) and by Django's own request log.
"""

from __future__ import annotations

import logging
import re
from functools import cache
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


# --- Recipients ---------------------------------------------------------------------------------------------------
HIDDEN = "•••"
CHANNEL_PREFIXES = ("whatsapp:",)


def mask_phone(number: str) -> str:
    """+14155550100 -> +1415•••0100: the country code, 3 digits and the last 4; shorter numbers keep less (+47
    12345678 -> +47123•••78) so that at least 3 digits are always hidden."""
    digits = re.sub(r"\D", "", number)
    # Country calling codes are prefix-free: the first of 1, 2 or 3 digits that is one is the one.
    length = next((n for n in (1, 2, 3) if int(digits[:n] or 0) in _country_codes()), 1)
    country, national = digits[:length], digits[length:]
    tail = 4 if len(national) >= 10 else 2 if len(national) >= 5 else 0
    head = min(3, max(len(national) - tail - 3, 0))
    return f"+{country}{national[:head]}{HIDDEN}{national[len(national) - tail :]}"


@cache
def _country_codes() -> frozenset[int]:
    # Imported on first use: settings import this module, and most processes never mask a number.
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return frozenset(COUNTRY_CODE_TO_REGION_CODE)


def mask_email(address: str) -> str:
    """ada@example.com -> a•••@example.com."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}{HIDDEN}@{domain}"


def mask_digits(value: str) -> str:
    """A Messenger PSID or any other long run of digits: 2494432963985342 -> •••5342."""
    return f"{HIDDEN}{value[-4:]}" if len(value) >= 8 else HIDDEN


def mask_recipient(value: str) -> str:
    """A message's recipient as a log line may show it, whatever its channel (whatsapp:+1415•••0100 too)."""
    prefix = next((p for p in CHANNEL_PREFIXES if value.startswith(p)), "")
    address = value[len(prefix) :]
    if "@" in address:
        return mask_email(address)
    if address.startswith("+"):
        return prefix + mask_phone(address)
    if address.isdigit():
        return mask_digits(address)
    return HIDDEN


# What could be a recipient in free text. Two expressions, each tried only on text that may hold what it finds
# (an @; a + or three digits in a row), so a line with neither costs two substring tests and a short search.
EMAIL_ADDRESS = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
PHONE_NUMBER = re.compile(
    r"(?=[\d(+%])(?:"
    # E.164, its + maybe URL-encoded (a logged form body), perhaps written with spaces, dots, dashes or brackets
    r"(?P<e164>(?:\+|%2[Bb])\d(?:[ .\-()]{0,2}\d){6,16})"
    r"|(?<![\w+%.])(?:"
    # a national number in groups: (415) 555-0100, 020 7946 0018
    r"\(?\d{2,4}\)?[ .\-]\d{3,4}[ .\-]\d{3,4}"
    # a national number or a Messenger PSID: 9 digits or more standing alone. Ids in hex (Twilio's SIDs) are never
    # cut into; our message ids only reach 9 digits after the hundred millionth message.
    r"|\d{9,}"
    r")(?!\w))"
)
THREE_DIGITS = re.compile(r"\d\d\d")


def _masked_number(found: re.Match[str]) -> str:
    if found.lastgroup == "e164":
        return mask_phone(found.group().removeprefix("%2B").removeprefix("%2b"))
    return mask_digits(re.sub(r"\D", "", found.group()))


def mask_personal_data(text: str) -> str:
    """`text` with every email address, phone number and long run of digits in it masked."""
    if "@" in text or "%40" in text:
        text = EMAIL_ADDRESS.sub(lambda found: mask_email(found.group().replace("%40", "@")), text)
    if "+" in text or "%2" in text or THREE_DIGITS.search(text):
        text = PHONE_NUMBER.sub(_masked_number, text)
    return text


# Secrets some clients put in a URL's query, which urllib3 logs at DEBUG (Meta's access_token and its proof).
SECRET_PARAMETER = re.compile(
    r"(?<![A-Za-z0-9_])((?:access_token|appsecret_proof|api_key|apikey|token|secret|password|signature)=)[^&\s\"'#]+",
    re.IGNORECASE,
)
SECRET_PARAMETER_HINTS = ("token=", "TOKEN=", "proof=", "key=", "KEY=", "secret=", "password=", "signature=")


def mask_sensitive(text: str) -> str:
    """`text` with personal data (mask_personal_data) and secrets given as query parameters masked."""
    text = mask_personal_data(text)
    if any(hint in text for hint in SECRET_PARAMETER_HINTS):
        text = SECRET_PARAMETER.sub(rf"\g<1>{MASK}", text)
    return text


class RedactSensitiveData(logging.Filter):
    """On every handler, last: the record's message, exception and stack text with personal data and secret query
    parameters masked.

    The message is formatted here (and its arguments dropped) only when something in it was masked. Runs once per
    log record, never per message sent by itself: the send path logs per batch, and per message only on failure.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: the handler reports it; mask what it will show
            message = str(record.msg)
            record.args = None
        masked = mask_sensitive(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_sensitive(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_sensitive(record.stack_info)
        return True
