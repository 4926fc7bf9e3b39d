"""`manage.py check` tells you plainly when Redis is unreachable, instead of a traceback later."""

from django.conf import settings
from django.core import checks

from .health import redact_url, redis_status


@checks.register("redis")
def check_redis_reachable(app_configs=None, **kwargs):
    status = redis_status()
    if status["ok"]:
        return []
    return [
        checks.Error(
            f"Redis is unreachable at {redact_url(settings.REDIS_URL)}: {status['error']}",
            hint="Start Redis (`make redis`, or `redis-server`) or point REDIS_URL at a running one.",
            id="tidings.E001",
        )
    ]


@checks.register("tidings")
def check_reliability_settings(app_configs=None, **kwargs):
    """A lease shorter than a provider call would send slow calls to review; a bad rate string fails every send."""
    from limits import parse_many

    problems = []
    if settings.SEND_LEASE_SECONDS <= settings.TWILIO_TIMEOUT + 5:
        problems.append(
            checks.Warning(
                f"SEND_LEASE_SECONDS ({settings.SEND_LEASE_SECONDS:g}) is not well above TWILIO_TIMEOUT "
                f"({settings.TWILIO_TIMEOUT:g}): slow provider calls would be taken for interrupted ones.",
                hint="Keep SEND_LEASE_SECONDS at least TWILIO_TIMEOUT + 5 seconds.",
                id="tidings.W002",
            )
        )
    for name in ("SMS_RATE_LIMIT", "SMS_SENDER_RATE_LIMIT", "EMAIL_RATE_LIMIT", "EMAIL_SENDER_RATE_LIMIT"):
        value = getattr(settings, name, "")
        try:
            if value:
                parse_many(value)
        except ValueError as error:
            problems.append(
                checks.Error(
                    f"{name}={value!r} is not a rate: {error}",
                    hint='Write it like "30/second" or "14/second;50000/day".',
                    id="tidings.E003",
                )
            )
    return problems
