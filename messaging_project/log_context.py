"""Which job, message, campaign, channel and provider a log line is about, carried in every record.

Code that works on something sets it for the time it works on it (`with log_context(job_id=..., channel=...)`);
`LogContextFilter`, on every handler, copies what is set onto each record, so that a line a library logs meanwhile
(rq, twilio, urllib3, Django) carries it too. Two formats read it: `TextFormatter` (the default, for people: a
compact " [job=… msg=…]" after the message, only what is set) and `JsonFormatter` (LOG_FORMAT=json: one JSON object
a line, each field its own key). The context lives in a ContextVar: each thread and each asyncio task has its own,
and a thread pool's calls see it only when run in a copy (`contextvars.copy_context().run`).

A recipient is never kept as given: `log_context(recipient=...)` stores it masked (messaging_project.log_redaction).
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

from .log_redaction import mask_recipient, mask_sensitive

# The fields, in the order the text format shows them, with the short name it shows them by.
FIELDS = {
    "request_id": "request",
    "job_id": "job",
    "campaign_id": "campaign",
    "message_id": "msg",
    "attempt": "attempt",
    "channel": "channel",
    "provider": "provider",
    "recipient": "to",
}
FORMATS = ("text", "json")

_EMPTY: Mapping[str, Any] = {}
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("log_context", default=_EMPTY)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add these fields (those not None) to every record logged inside the block, in this thread or task."""
    unknown = fields.keys() - FIELDS.keys()
    if unknown:
        raise TypeError(f"Unknown log context field(s): {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
    if "recipient" in fields:
        fields["recipient"] = mask_recipient(str(fields["recipient"])) if fields["recipient"] else None
    token = _context.set({**_context.get(), **{name: value for name, value in fields.items() if value is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> Mapping[str, Any]:
    return _context.get()


# A request id a proxy or a client may give (X-Request-ID), kept only in this shape: nothing that could forge a line.
REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,64}")


class RequestLogContextMiddleware:
    """Every line logged while a request is handled carries its id: the X-Request-ID it came with (from the load
    balancer, say) when it looks like one, else a new one; the response carries it back, to quote in a report."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        with log_context(request_id=request_id):
            response = self.get_response(request)
        response.headers.setdefault("X-Request-ID", request_id)
        return response


class LogContextFilter(logging.Filter):
    """Copies the context onto each record; a field given to the call itself (`extra=`) wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if name not in record.__dict__:
                setattr(record, name, value)
        # Django logs a 4xx/5xx after the middleware has returned, out of its context, with the request attached.
        request = record.__dict__.get("request")
        if request is not None and "request_id" not in record.__dict__:
            request_id = getattr(request, "request_id", None)
            if request_id:
                record.request_id = request_id
        return True


def context_suffix(record: logging.LogRecord) -> str:
    """' [job=… msg=… channel=sms]': the record's context fields, or '' when it has none."""
    shown = [f"{short}={record.__dict__[name]}" for name, short in FIELDS.items() if name in record.__dict__]
    return f" [{' '.join(shown)}]" if shown else ""


class TextFormatter(logging.Formatter):
    """The human format: `2026-12-07 15:44:27,123 INFO deliveries.sending.job Sent … [job=… channel=sms]`."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: Any = "%", **kwargs: Any):
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt, style, **kwargs)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return super().formatMessage(record) + context_suffix(record)


# The fields python-json-logger writes that are ours or its own, never personal data: not masked again.
_KEPT_AS_IS = frozenset({"timestamp", "level", "logger", *FIELDS})


class JsonFormatter(BaseJsonFormatter):
    """One JSON object a line: timestamp (UTC), level, logger, message, the context fields that are set, any
    `extra=` of the call, and exc_info/stack_info. Every other value goes through the mask of personal data and
    secrets here as well: a library's `extra=` (Django's request, say) is not seen by the handler's filter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args or ("%(levelname)s %(name)s %(message)s",), **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        masked = {key: value if key in _KEPT_AS_IS else _masked_value(value) for key, value in log_data.items()}
        return {"timestamp": masked.pop("timestamp", None), **masked}  # the time first, as in the text format


def _masked_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_sensitive(value)
    if isinstance(value, Mapping):
        return {str(key): _masked_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked_value(item) for item in value]
    return mask_sensitive(str(value))


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """settings.LOGGING: one handler on standard error, in `log_format` (text or json), with the context and then
    the mask of personal data and secrets on it, so every record that reaches it (any library's) goes through both."""
    if log_format not in FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"()": "messaging_project.log_context.TextFormatter"},
            "json": {"()": "messaging_project.log_context.JsonFormatter"},
        },
        "filters": {
            "log_context": {"()": "messaging_project.log_context.LogContextFilter"},
            "redact_sensitive_data": {"()": "messaging_project.log_redaction.RedactSensitiveData"},
            # Django logs the path of every 4xx/5xx ("Bad Request: /unsubscribe/<token>/"): masked like the
            # access log.
            "redact_paths": {"()": "messaging_project.log_redaction.RedactPaths"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["log_context", "redact_sensitive_data"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own handlers (its console one with DEBUG on, runserver's request lines) would print its
            # records a second time, or without the masks: they go to the root's handler like any other.
            "django": {"handlers": [], "level": "INFO"},
            "django.server": {"handlers": [], "filters": ["redact_paths"], "propagate": True},
            "django.db.backends": {"level": "WARNING"},
            "django.request": {"filters": ["redact_paths"]},
        },
    }
