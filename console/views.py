"""The console's pages inside the admin: the queue monitor and its "retry these" / "cancel these" steps.

Thin: each view checks who may do what, parses the form and calls console.services.queues. Staff need
console.view_queue_monitor to see the monitor; acting on a group takes deliveries' retry_message or cancel_message
as well, checked again on every POST.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from content.models import Channel
from deliveries.services.audit import audit_record_each

from .services.queues import (
    ACTIONS,
    KINDS,
    WINDOWS,
    FailureGroup,
    GroupAction,
    group_act,
    group_count,
    monitor_forget,
    monitor_snapshot,
    window_parse,
)

MONITOR_PERMISSION = "console.view_queue_monitor"


def _require_monitor(request: HttpRequest) -> None:
    if not request.user.has_perm(MONITOR_PERMISSION):
        raise PermissionDenied("You need the permission to see the queue monitor (console | view queue monitor).")


def _context(request: HttpRequest, title: str, **extra: object) -> dict[str, object]:
    return {**admin.site.each_context(request), "title": title, **extra}


@require_GET
def queue_monitor(request: HttpRequest) -> HttpResponse:
    _require_monitor(request)
    window = window_parse(request.GET.get("window"))
    snapshot = monitor_snapshot(window=window)
    user = request.user
    return TemplateResponse(
        request,
        "console/queue_monitor.html",
        _context(
            request,
            "Queue monitor",
            snapshot=snapshot,
            window=window,
            windows=list(WINDOWS),
            may={name: user.has_perm(action.permission) for name, action in ACTIONS.items()},
            show_rq_dashboard=user.is_superuser,
            cache_seconds=settings.DASHBOARD_CACHE_SECONDS,
        ),
    )


def _parse_group(request: HttpRequest) -> tuple[FailureGroup, GroupAction]:
    """The group and action a POST names. ValueError (answered 400 with its one line) when the form names no such
    pair; PermissionDenied (403) when the user may not take the action."""
    action = ACTIONS.get(request.POST.get("action", ""))
    kind = request.POST.get("kind", "")
    channel = request.POST.get("channel", "")
    if action is None or kind not in KINDS or kind != action.kind or channel not in Channel.values:
        raise ValueError("That group or action does not exist; pick one from the monitor.")
    if not request.user.has_perm(action.permission):
        raise PermissionDenied(f"You need the permission {action.permission} to {action.name} messages.")
    code = request.POST.get("code", "")[:50]
    window = window_parse(request.POST.get("window"))
    return FailureGroup(kind=kind, channel=channel, code=code, window=window), action


def _int_field(request: HttpRequest, name: str) -> int:
    try:
        return min(max(int(request.POST.get(name, "0")), 0), 2**62)  # a bigint, whatever is posted
    except ValueError:
        return 0


@require_POST
def queue_monitor_act(request: HttpRequest) -> HttpResponse:
    """Confirm, then act in steps: the first POST shows the count and asks; each confirmed POST acts on up to
    QUEUE_MONITOR_ACTION_BATCH messages and shows the progress, continuing until the group is done."""
    _require_monitor(request)
    monitor_url = reverse("console:queue-monitor")
    try:
        group, action = _parse_group(request)
    except ValueError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    back = f"{monitor_url}?window={group.window}"
    context = _context(
        request,
        f"{action.verb} {group.channel} messages ({group.code or 'no code'})",
        group=group,
        action=action,
        back=back,
        batch=settings.QUEUE_MONITOR_ACTION_BATCH,
    )
    if request.POST.get("confirmed") != "yes":
        total = group_count(group)
        if not total:
            messages.info(request, "No message is left in that group.")
            return HttpResponseRedirect(back)
        return TemplateResponse(request, "console/group_confirm.html", {**context, "total": total})

    total = _int_field(request, "total")
    done = _int_field(request, "done")
    changed, tried, last = group_act(
        group=group, action=action, by=request.user.get_username(), after=_int_field(request, "after")
    )
    audit_record_each(
        action=action.audit_action,
        targets=changed,
        request=request,
        details={"source": "queue monitor", "channel": group.channel, "code": group.code},
    )
    done += len(changed)
    monitor_forget()
    if tried and done < total:
        return TemplateResponse(
            request, "console/group_progress.html", {**context, "total": total, "done": done, "after": last}
        )
    messages.success(
        request,
        f"{action.verb}: {done} message(s) of {group.channel} ({group.code or 'no code'}) done.",
    )
    return HttpResponseRedirect(back)
