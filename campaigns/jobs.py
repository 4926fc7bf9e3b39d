"""RQ jobs of the campaigns app. Each takes an id and calls one service."""

from .services.campaigns import campaign_fan_out as _campaign_fan_out


def campaign_fan_out(campaign_id: int) -> int:
    """Expand a launched campaign's audience into messages. Safe to run twice: it carries on from its cursor."""
    return _campaign_fan_out(campaign_id=campaign_id)
