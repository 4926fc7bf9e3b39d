"""The message list's Release action: held messages (the cost guard's) queued again by a person with permission."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import AuditEntry, Message, Status
from ..services.audit import audit_record_each
from ..services.holds import held_messages_release

RELEASE_PERMISSION = "deliveries.release_held_message"


class HeldMessageActions:
    """Mixed into MessageAdmin, whose `actions` name `release_selected`."""

    def has_release_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RELEASE_PERMISSION)

    @admin.action(
        description="Release selected held messages (the cost guard will not hold them again)", permissions=["release"]
    )
    def release_selected(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        ids = list(queryset.filter(status=Status.HELD).values_list("pk", flat=True))
        released = held_messages_release(message_ids=ids, by=request.user.get_username())
        # Exactly those this action moved, whatever held them (a cap or a velocity limit).
        changed = Message.objects.filter(pk__in=released)
        audit_record_each(action=AuditEntry.Action.MESSAGES_RELEASED, targets=changed, request=request)
        skipped = queryset.count() - len(released)
        self.message_user(  # type: ignore[attr-defined]
            request,
            f"Released {len(released)} message(s)." + (f" {skipped} were not held, so left alone." if skipped else ""),
        )
