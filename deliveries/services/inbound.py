"""Messages people send us: kept as received, and opt-out keywords applied to the suppression list."""

from __future__ import annotations

import dataclasses

from django.conf import settings
from django.db import IntegrityError, transaction

from ..models import ERASED, AuditEntry, InboundMessage, Suppression
from .audit import audit_record
from .suppression import suppression_add, suppression_for, suppression_lift

Keyword = InboundMessage.Keyword

# Twilio's own default keywords (it blocks sending after these on its side too), so both lists agree.
# https://help.twilio.com/articles/223134027
KEYWORDS = {
    **dict.fromkeys(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"], Keyword.STOP),
    **dict.fromkeys(["START", "UNSTOP", "YES"], Keyword.START),
    **dict.fromkeys(["HELP", "INFO"], Keyword.HELP),
}
# Twilio's Advanced Opt-Out tells us which keyword it matched in OptOutType.
OPT_OUT_TYPES = {"STOP": Keyword.STOP, "START": Keyword.START, "HELP": Keyword.HELP}


@dataclasses.dataclass(frozen=True)
class InboundResult:
    message: InboundMessage | None  # None when this exact message was received before
    keyword: str
    reply: str = ""  # what to answer the sender with, if anything


def keyword_of(body: str) -> str:
    """The keyword a whole message amounts to ("stop", "start", "help"), or "". Only the message on its own
    counts: "please don't stop" is not an opt-out."""
    word = (body or "").strip().strip(".!").strip().upper()
    return KEYWORDS.get(word, Keyword.NONE)


def twilio_inbound_record(*, params: dict[str, str]) -> InboundResult:
    """An SMS or WhatsApp message Twilio received for us (already verified)."""
    sender = params.get("From", "")
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    body = params.get("Body", "")
    keyword = OPT_OUT_TYPES.get((params.get("OptOutType") or "").upper()) or keyword_of(body)
    try:
        media_count = int(params.get("NumMedia") or 0)
    except ValueError:
        media_count = 0
    return inbound_record(
        channel=channel,
        sender=sender.removeprefix("whatsapp:"),
        recipient=params.get("To", "").removeprefix("whatsapp:"),
        body=body,
        media_urls=[params[f"MediaUrl{i}"] for i in range(media_count) if params.get(f"MediaUrl{i}")],
        keyword=keyword,
        provider="twilio",
        provider_message_id=params.get("MessageSid") or params.get("SmsSid") or "",
        data={k: v for k, v in params.items() if k not in ("Body",)},
        source="Twilio inbound reply",
    )


def inbound_record(
    *,
    channel: str,
    sender: str,
    recipient: str,
    body: str,
    provider: str,
    provider_message_id: str,
    keyword: str = Keyword.NONE,
    media_urls: list[str] | None = None,
    data: dict | None = None,
    source: str = "",
) -> InboundResult:
    """Keep an inbound message once (by the provider's id) and act on its keyword: STOP puts the sender on the
    channel's suppression list, START takes an opt-out off it, HELP answers with INBOUND_HELP_REPLY.

    A STOP from an erased person (their entry on the list is a hash) is kept as erasure leaves their replies,
    without sender, text or payload: their opt-out holds already, and keeping it in clear would undo the erasure."""
    # Without a sender (a malformed or hand-made request) there is nobody to put on or take off the list.
    has_sender = bool(sender.strip())
    erased = keyword == Keyword.STOP and has_sender and _sender_erased(channel, sender)
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                channel=channel,
                sender=ERASED if erased else sender,
                recipient=recipient,
                body="" if erased else body,
                media_urls=[] if erased else media_urls or [],
                keyword=keyword,
                provider=provider,
                provider_message_id=provider_message_id,
                data={} if erased else data or {},
            )
            if has_sender and keyword == Keyword.STOP:
                suppression_add(
                    channel=channel,
                    address=sender,
                    reason=Suppression.Reason.OPT_OUT,
                    source=f"{source}: {body.strip()[:20].upper()}",
                    detail=f"Replied {body.strip()[:40]!r} to {recipient}.",
                    erased=erased,
                )
            elif has_sender and keyword == Keyword.START and suppression_lift(channel=channel, address=sender):
                # Sending to someone again is what a forged reply would want: recorded, unlike an opt-out.
                audit_record(
                    action=AuditEntry.Action.SUPPRESSION_LIFTED,
                    target=message,
                    actor=source or f"{provider} inbound message",
                    details={"channel": channel, "address": sender, "keyword": keyword},
                )
    except IntegrityError:  # the provider retried a message we already have
        return InboundResult(message=None, keyword=keyword, reply=_reply_for(keyword))
    return InboundResult(message=message, keyword=keyword, reply=_reply_for(keyword))


def _sender_erased(channel: str, sender: str) -> bool:
    entry = suppression_for(channel=channel, address=sender)
    return entry is not None and entry.address is None


def _reply_for(keyword: str) -> str:
    return settings.INBOUND_HELP_REPLY if keyword == Keyword.HELP else ""
