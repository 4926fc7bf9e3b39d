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
