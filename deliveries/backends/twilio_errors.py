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
    63038: "The WhatsApp sender reached its daily message limit.",
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
    30034: "The message came from a number not registered for A2P 10DLC.",
    63003: "The WhatsApp recipient is not a valid WhatsApp user.",
    63016: "Outside WhatsApp's 24-hour window: use an approved template (Content SID).",
    63024: "The WhatsApp recipient cannot be messaged (invalid message recipient).",
}


# Codes that tell us the recipient must not be messaged again, and the suppression reason they stand for.
SUPPRESSING_CODES = {21610: "opt_out"}


def reason_for(code: int | str | None, fallback: str = "") -> str:
    try:
        number = int(code) if code is not None and code != "" else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        return fallback or "Unknown Twilio error."
    return TRANSIENT_CODES.get(number) or PERMANENT_CODES.get(number) or fallback or f"Twilio error {number}."


def is_transient(code: int | str | None, http_status: int | None) -> bool:
    """Throttling, server errors and the codes above are transient; every other 4xx is permanent."""
    try:
        if code is not None and code != "" and int(code) in TRANSIENT_CODES:
            return True
    except (TypeError, ValueError):
        pass
    return http_status is None or http_status == 429 or http_status >= 500
