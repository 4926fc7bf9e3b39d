"""RQ jobs of the campaigns app. Each takes an id and calls one service; the logic is in campaigns.services."""

from rq import get_current_job

from messaging_project.log_context import log_context

from .services.completion import campaign_summary_send
from .services.fan_out import campaign_fan_out as _campaign_fan_out


def _job_id() -> str | None:
    job = get_current_job()
    return job.id if job is not None else None


def campaign_fan_out(campaign_id: int) -> int:
    """Expand a launched campaign's audience into messages. Safe to run twice: it carries on from its cursor."""
    with log_context(job_id=_job_id(), campaign_id=campaign_id):
        return _campaign_fan_out(campaign_id=campaign_id)


def send_campaign_summary(campaign_id: int) -> int | None:
    """Email a completed campaign's owner its summary. Safe to run twice: the owner gets one email."""
    with log_context(job_id=_job_id(), campaign_id=campaign_id):
        message = campaign_summary_send(campaign_id=campaign_id)
    return message.pk if message else None
