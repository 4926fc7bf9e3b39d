"""Twilio error codes we act on, in one place (Twilio warns that codes change).

https://www.twilio.com/docs/api/errors
"""

# Codes that mean "try again later".
TRANSIENT_CODES = {
    20429: "Twilio is throttling requests (too many requests).",
    20500: "Twilio had an internal error.",
    20503: "Twilio is temporarily unavailable.",
    30001: "The message queue overflowed at Twilio.",
    30008: "Unknown error at the carrier.",
}

# Codes that will not get better by retrying, with a reason a person can act on.
PERMANENT_CODES = {
    21211: "The 'To' number is not a valid phone number.",
    21212: "The 'From' number is not a valid phone number.",
    21408: "Sending to this region is not enabled on the Twilio account.",
    21606: "The 'From' number cannot send SMS.",
    21610: "The recipient has unsubscribed (replied STOP).",
    21612: "Twilio cannot route to this number.",
    21614: "The 'To' number is not a mobile number.",
    30003: "The handset is unreachable.",
    30004: "The message was blocked.",
    30005: "The number is unknown or no longer exists.",
    30006: "The number is a landline or cannot receive SMS.",
    30007: "The carrier filtered the message as spam.",
}


def reason_for(code: int | str | None, fallback: str = "") -> str:
    try:
        number = int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        return fallback or "Unknown Twilio error."
    return TRANSIENT_CODES.get(number) or PERMANENT_CODES.get(number) or fallback or f"Twilio error {number}."


def is_transient(code: int | str | None, http_status: int | None) -> bool:
    """Throttling, server errors and the codes above are transient; every other 4xx is permanent."""
    try:
        if code not in (None, "") and int(code) in TRANSIENT_CODES:
            return True
    except (TypeError, ValueError):
        pass
    return http_status is None or http_status == 429 or http_status >= 500
