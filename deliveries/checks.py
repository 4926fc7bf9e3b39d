"""`manage.py check` tells you plainly when Redis is unreachable, instead of a traceback later; `check --deploy`
also tells you when provider callbacks cannot reach this site or are not protected."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from messaging_project.redis_connections import RedisConfig

from .health import redis_location, redis_status
from .webhooks.anymail import configured_esp


@checks.register("redis")
def check_redis_reachable(app_configs=None, **kwargs):
    """A half configuration (sentinels without a master name, a CA file that is not there) is said as such, before
    any attempt to connect with it."""
    problems = RedisConfig.from_settings(settings).problems()
    if problems:
        return [checks.Error(problem, hint=hint, id="tidings.E060") for problem, hint in problems]
    status = redis_status()
    if status["ok"]:
        return []
    return [
        checks.Error(
            f"Redis is unreachable at {redis_location()}: {status['error']}",
            hint="Start Redis (`make redis`) or point REDIS_URL (or REDIS_SENTINELS) at a running one.",
            id="tidings.E001",
        )
    ]


@checks.register("tidings", deploy=True)
def check_webhooks_are_reachable_and_protected(app_configs=None, **kwargs):
    """Provider callbacks are how statuses come back: they must reach us, and nobody else may forge them."""
    issues = []
    public = urlsplit(settings.PUBLIC_BASE_URL)
    if public.scheme != "https" or public.hostname in ("127.0.0.1", "localhost", None):
        issues.append(
            checks.Warning(
                f"PUBLIC_BASE_URL is {settings.PUBLIC_BASE_URL!r}: providers cannot call back there, and "
                "unsubscribe links in emails would not work.",
                hint="Set PUBLIC_BASE_URL to the public https:// address of this site (README, Webhooks).",
                id="tidings.W010",
            )
        )
    if configured_esp() and not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        # The webhook refuses every event without it (deliveries/webhooks/anymail.py): no bounce, complaint or
        # unsubscribe would ever come back, so this stops a deploy rather than warning.
        issues.append(
            checks.Error(
                "ANYMAIL_WEBHOOK_SECRET is empty: the email tracking webhook refuses every event, so bounces, "
                "complaints and unsubscribes never reach the suppression list.",
                hint="Set ANYMAIL_WEBHOOK_SECRET to a random user:password and give the same to your ESP's webhook.",
                id="tidings.E011",
            )
        )
    if settings.MESSENGER_PAGE_ACCESS_TOKEN and not (settings.MESSENGER_APP_SECRET and settings.MESSENGER_VERIFY_TOKEN):
        issues.append(
            checks.Warning(
                "Messenger is configured without MESSENGER_APP_SECRET or MESSENGER_VERIFY_TOKEN: its webhook "
                "refuses every event, so no delivery or read receipt comes back.",
                hint="Set both, and give the verify token to Meta when subscribing the webhook.",
                id="tidings.W012",
            )
        )
    return issues


@checks.register("tidings")
def check_reliability_settings(app_configs=None, **kwargs):
    """A lease shorter than a provider call would send slow calls to review; a bad rate string fails every send."""
    from limits import parse_many

    problems = []
    # A call may take the provider's timeout, and its outcome's write may then wait out a lost database connection.
    timeouts = {"TWILIO_TIMEOUT": settings.TWILIO_TIMEOUT, "MESSENGER_TIMEOUT": settings.MESSENGER_TIMEOUT}
    if "smtp" in settings.EMAIL_BACKEND:
        timeouts["EMAIL_TIMEOUT"] = settings.EMAIL_TIMEOUT
    slowest = max(timeouts, key=lambda name: timeouts[name])
    lease, needed = settings.SEND_LEASE_SECONDS, timeouts[slowest] + settings.SEND_DATABASE_WAIT_SECONDS + 5
    if lease <= needed:
        problems.append(
            checks.Warning(
                f"SEND_LEASE_SECONDS ({settings.SEND_LEASE_SECONDS:g}) is not well above {slowest} "
                f"({timeouts[slowest]:g}) plus SEND_DATABASE_WAIT_SECONDS ({settings.SEND_DATABASE_WAIT_SECONDS:g}): "
                "slow provider calls, or calls whose outcome waited for the database, would be taken for "
                "interrupted ones (review).",
                hint=f"Keep SEND_LEASE_SECONDS at least {slowest} + SEND_DATABASE_WAIT_SECONDS + 5 seconds.",
                id="tidings.W002",
            )
        )
    job_timeout = settings.RQ_QUEUES["default"].get("DEFAULT_TIMEOUT", 180)
    if job_timeout / 2 < settings.SEND_JOB_TAKE_OVER_SECONDS:
        problems.append(
            checks.Warning(
                f"SEND_JOB_TAKE_OVER_SECONDS ({settings.SEND_JOB_TAKE_OVER_SECONDS:g}) is more than half of "
                f"RQ_JOB_TIMEOUT ({job_timeout:g}): a send job that took over waiting jobs for that long may be "
                "killed by RQ before it finishes its last batch, leaving its calls in doubt (review).",
                hint="Keep SEND_JOB_TAKE_OVER_SECONDS at most a third of RQ_JOB_TIMEOUT (30 of 300 by default).",
                id="tidings.W003",
            )
        )
    if settings.IDEMPOTENCY_KEY_TTL_HOURS <= 0:
        problems.append(
            checks.Error(
                f"IDEMPOTENCY_KEY_TTL_HOURS ({settings.IDEMPOTENCY_KEY_TTL_HOURS:g}) is not positive: no "
                "Idempotency-Key would ever replay, so a client's retry would send its message twice.",
                hint="Keep it at least as long as your clients retry a request (24 hours by default).",
                id="tidings.E004",
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
    if settings.WORKER_TTL < 20:
        # RQ takes 0 for its default (420 s) and wakes an idle worker every TTL - 15 seconds.
        problems.append(
            checks.Error(
                f"WORKER_TTL ({settings.WORKER_TTL}) is under 20 seconds: RQ would take 0 for its own 8 minutes, and "
                "an idle worker would renew its registration every second or so.",
                hint="Keep WORKER_TTL at 20 or more (60 by default).",
                id="tidings.E005",
            )
        )
    return problems


@checks.register("tidings")
def check_retention_settings(app_configs=None, **kwargs):
    """An ARCHIVE_AFTER_DAYS under a week would take messages the queue monitor still shows, and an
    AUDIT_RETENTION_DAYS under a day would delete the whole audit trail: both refused at start."""
    problems = []
    days = settings.ARCHIVE_AFTER_DAYS
    if 0 < days < 7 or days < 0:
        problems.append(
            checks.Error(
                f"ARCHIVE_AFTER_DAYS is {days}: archiving takes messages at least 7 days old (the queue monitor shows "
                "and retries a week of failures).",
                hint="Set it to 7 or more, or to 0 to archive nothing (docs/operations.md, Archiving and retention).",
                id="tidings.E020",
            )
        )
    audit_days = settings.AUDIT_RETENTION_DAYS
    if audit_days < 1:
        # 0 reads as "keep forever" in many tools; here the reconciler would delete every entry as it is written.
        problems.append(
            checks.Error(
                f"AUDIT_RETENTION_DAYS is {audit_days}: the reconciler would delete the whole audit trail, each "
                "entry as soon as it is written.",
                hint="Set the days to keep it, 1 or more (365 by default); to keep it for good, a large number.",
                id="tidings.E021",
            )
        )
    return problems
