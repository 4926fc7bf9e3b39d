"""What one smoke-test check found, and the one line it prints: `ok  `, `FAIL` (with the next step) or `skip`."""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"  # nothing to check: a console backend, an ESP without a harmless call


@dataclass(frozen=True)
class CheckResult:
    name: str  # "database", "redis (cache)", "sms (twilio)", "send sms → +14155550100"
    outcome: Outcome
    detail: str
    next_step: str = ""

    @classmethod
    def ok(cls, name: str, detail: str) -> CheckResult:
        return cls(name, Outcome.OK, detail)

    @classmethod
    def fail(cls, name: str, detail: str, next_step: str) -> CheckResult:
        return cls(name, Outcome.FAIL, detail, next_step)

    @classmethod
    def skip(cls, name: str, detail: str) -> CheckResult:
        return cls(name, Outcome.SKIP, detail)

    @property
    def failed(self) -> bool:
        return self.outcome == Outcome.FAIL

    def line(self) -> str:
        text = f"{self.outcome.value:<4} {self.name}: {self.detail}"
        return f"{text} → {self.next_step}" if self.next_step else text


# A query string may carry a token (Graph's access_token, the verify token): never printed.
QUERY_STRING = re.compile(r"\?[^\s'\")]*")


def one_line(error: BaseException, *secrets: str) -> str:
    """An error as one readable line, without query strings or the given secrets (drivers' and HTTP clients'
    messages run over several lines and quote the URL they called)."""
    text = QUERY_STRING.sub("?…", " ".join(str(error).split())) or error.__class__.__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def http_problem(error: BaseException, *secrets: str) -> str:
    """What went wrong with an HTTP call, in a few words ("Connection refused", "Name or service not known",
    "timed out", "certificate verify failed…") rather than urllib3's whole chain of wrappers."""
    import requests

    if isinstance(error, requests.Timeout):
        return "timed out"
    text = one_line(error, *secrets)
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS: " + (text.split("SSLError(", 1)[-1].rstrip(")") if "SSLError(" in text else text)
    found = ERRNO.search(text)
    return found.group(1).strip() if found else text


def guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Runs one check so that whatever it meets becomes its own FAIL line, never a traceback that hides the
    other checks' answers."""
    try:
        return check()
    except Exception as error:  # a smoke test reports every failure it meets, expected or not
        return unexpected_failure(name, error)


def unexpected_failure(name: str, error: Exception) -> CheckResult:
    logger.debug("Smoke check %s failed unexpectedly", name, exc_info=True)
    return CheckResult.fail(
        name,
        f"unexpected {error.__class__.__name__}: {one_line(error)}",
        "run again with --verbosity 3 to see where, and report it",
    )
