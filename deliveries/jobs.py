"""RQ jobs. Each takes ids, loads, and calls one service; all the logic is in deliveries.services."""

from .services import sending


def send_messages(message_ids: list[int]) -> dict[str, int]:
    """Send a batch of queued messages. Safe to run twice: only rows still `queued` are sent."""
    return sending.send_messages(message_ids)
