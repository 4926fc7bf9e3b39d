"""RQ jobs. Each takes ids, loads, and calls one service; the logic is in campaigns.services."""

from .services.completion import campaign_summary_send


def send_campaign_summary(campaign_id: int) -> int | None:
    """Email a completed campaign's owner its summary. Safe to run twice: the owner gets one email."""
    message = campaign_summary_send(campaign_id=campaign_id)
    return message.pk if message else None
