"""Health endpoints for load balancers and orchestrators, and the public unsubscribe page."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from .health import providers_status, readiness_checks, readiness_failures
from .services.suppression import InvalidUnsubscribeToken, unsubscribe_message_for, unsubscribe_with_token


@never_cache
@require_GET
def health_live(request):
    """The process is up and serving requests. Checks nothing else, so it never flaps with a dependency."""
    return JsonResponse({"status": "ok"})


def health_token_given(request) -> bool:
    """The caller sent `Authorization: Bearer <HEALTH_TOKEN>` (never true while HEALTH_TOKEN is unset)."""
    token = settings.HEALTH_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and constant_time_compare(given.strip(), token)


@never_cache
@require_GET
def health_ready(request):
    """Can we take and deliver messages? 503 when the database or Redis is unreachable, when no dispatcher has
    beaten within DISPATCHER_HEARTBEAT_MAX_AGE (nothing scheduled goes out, nothing lost is re-queued), or when
    no worker is alive (nothing is sent).

    Anyone gets only {"status": "ok"} or {"status": "failing"}: error texts name hosts, users and versions. With
    the health token, every check's details, `failing` saying which check fails and how, and "degraded" (still
    200) for a provider paused by its circuit breaker: its messages are stored and wait.
    """
    details = health_token_given(request)
    checks = readiness_checks(details=details)
    failing = readiness_failures(checks)
    ready = not failing
    if not details:
        return JsonResponse({"status": "ok" if ready else "failing"}, status=200 if ready else 503)
    checks["providers"] = providers_status() if checks["redis"]["ok"] else {"ok": False, "error": "Redis is down"}
    overall = "unavailable" if failing else ("ok" if checks["providers"]["ok"] else "degraded")
    return JsonResponse({"status": overall, "failing": failing, "checks": checks}, status=200 if ready else 503)


def masked(address: str) -> str:
    """Enough of the address for its owner to recognise it, not enough to harvest it from a forwarded link."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else f"***{address[-4:]}"


# Mail clients post one-click unsubscribes (RFC 8058) without cookies or CSRF tokens: the signed token in the URL
# is the proof. GET only shows the page, because link scanners follow every link in an email.
@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        message = unsubscribe_message_for(token)
    except InvalidUnsubscribeToken as error:
        return render(request, "deliveries/unsubscribe.html", {"error": str(error)}, status=400)
    context: dict[str, object] = {"address": masked(message.recipient), "channel": message.get_channel_display()}
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        unsubscribe_with_token(token=token, source="one-click unsubscribe" if one_click else "unsubscribe page")
        context["done"] = True
    return render(request, "deliveries/unsubscribe.html", context)
