"""Health endpoints for load balancers and orchestrators."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import database_status, providers_status, redis_status, workers_status


@never_cache
@require_GET
def health_live(request):
    """The process is up and serving requests. Checks nothing else, so it never flaps with a dependency."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def health_ready(request):
    """Can we take and deliver messages? 503 when the database or Redis is unreachable.

    No running worker, or a provider paused by its circuit breaker, is reported ("degraded") but stays 200:
    messages are stored and wait.
    """
    checks = {"database": database_status(), "redis": redis_status()}
    checks["workers"] = workers_status() if checks["redis"]["ok"] else {"ok": False, "count": 0}
    checks["providers"] = providers_status() if checks["redis"]["ok"] else {"ok": False, "error": "Redis is down"}
    ready = checks["database"]["ok"] and checks["redis"]["ok"]
    healthy = checks["workers"]["ok"] and checks["providers"]["ok"]
    overall = "ok" if ready and healthy else ("degraded" if ready else "unavailable")
    return JsonResponse({"status": overall, "checks": checks}, status=200 if ready else 503)
