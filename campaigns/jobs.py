"""RQ jobs of the campaigns app. Each takes an id and calls one service; the logic is in campaigns.services."""

from .services.completion import campaign_summary_send
from .services.fan_out import campaign_fan_out as _campaign_fan_out


def campaign_fan_out(campaign_id: int) -> int:
    """Expand a launched campaign's audience into messages. Safe to run twice: it carries on from its cursor."""
    return _campaign_fan_out(campaign_id=campaign_id)


def send_campaign_summary(campaign_id: int) -> int | None:
    """Email a completed campaign's owner its summary. Safe to run twice: the owner gets one email."""
    message = campaign_summary_send(campaign_id=campaign_id)
    return message.pk if message else None
