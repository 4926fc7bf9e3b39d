"""The message admin's own pages: the timeline as JSON, Cancel, Retry and Release from the message page, the CSV
export."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from ..models import AuditEntry, Message
from ..services.audit import audit_record
from ..services.holds import held_messages_release
from ..services.messages import message_cancel, message_retry
from .export import EXPORT_MAX_ROWS, export_response
from .held import RELEASE_PERMISSION
from .message_page import STATUS_COLOURS, timeline_state

EXPORT_PERMISSION = "deliveries.export_message"


class MessageAdminViews:
    """Mixed into MessageAdmin: `message_urls()` are added to its URLs."""

    def message_urls(self) -> list:
        wrap = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("export/", wrap(self.export_view), name="deliveries_message_export"),
            path("<int:object_id>/timeline/", wrap(self.timeline_view), name="deliveries_message_timeline"),
            path("<int:object_id>/cancel/", wrap(require_POST(self.cancel_view)), name="deliveries_message_cancel"),
            path("<int:object_id>/retry/", wrap(require_POST(self.retry_view)), name="deliveries_message_retry"),
            path("<int:object_id>/release/", wrap(require_POST(self.release_view)), name="deliveries_message_release"),
        ]

    def _message(self, request: HttpRequest, object_id: int) -> Message:
        message = get_object_or_404(Message.objects.select_related("campaign"), pk=object_id)
        if not self.has_view_or_change_permission(request, message):  # type: ignore[attr-defined]
            raise PermissionDenied
        return message

    def timeline_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        """The timeline's HTML and the status, for the message page's refresh while the message is in flight."""
        return JsonResponse(timeline_state(self._message(request, object_id), STATUS_COLOURS))

    def cancel_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return self._act(request, object_id, "cancel")

    def retry_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return self._act(request, object_id, "retry")

    def release_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return self._act(request, object_id, "release")

    def _act(self, request: HttpRequest, object_id: int, what: str) -> HttpResponse:
        permission = RELEASE_PERMISSION if what == "release" else f"deliveries.{what}_message"
        if not request.user.has_perm(permission):
            raise PermissionDenied
        message = self._message(request, object_id)
        by = request.user.get_username()
        if what == "release":
            done = bool(held_messages_release(message_ids=[message.pk], by=by))
            action, ok, refused = (
                AuditEntry.Action.MESSAGES_RELEASED,
                f"Message #{message.pk} released: it is queued, and the spend caps no longer hold it.",
                f"Message #{message.pk} was not released: it was not held.",
            )
        elif what == "cancel":
            done = message_cancel(message=message, by=by)
            action, ok, refused = (
                AuditEntry.Action.MESSAGE_CANCELLED,
                f"Message #{message.pk} cancelled: it will not be sent.",
                f"Message #{message.pk} was not cancelled: it had already started sending or finished.",
            )
        else:
            done = message_retry(message=message, by=by)
            action, ok, refused = (
                AuditEntry.Action.MESSAGE_RETRIED,
                f"Message #{message.pk} queued again.",
                f"Message #{message.pk} was not retried: only a failed message can be.",
            )
        if done:
            audit_record(action=action, target=message, request=request)
        self.message_user(request, ok if done else refused, messages.SUCCESS if done else messages.WARNING)  # type: ignore[attr-defined]
        return redirect(reverse("admin:deliveries_message_change", args=[message.pk]))

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The list as filtered and searched, as CSV. Recipients leave the system with it: its own permission,
        at most EXPORT_MAX_ROWS rows, and an audit entry saying who exported what."""
        if not (request.user.has_perm(EXPORT_PERMISSION) and self.has_view_permission(request)):  # type: ignore[attr-defined]
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)  # type: ignore[attr-defined]
        except IncorrectLookupParameters:
            self.message_user(request, "Nothing exported: the list's filters were not valid.", messages.ERROR)  # type: ignore[attr-defined]
            return redirect(reverse("admin:deliveries_message_changelist"))
        audit_record(
            action=AuditEntry.Action.MESSAGES_EXPORTED,
            request=request,
            details={"query": request.GET.urlencode()[:1000], "at_most": EXPORT_MAX_ROWS},
        )
        return export_response(changelist.queryset)
