from django.conf import settings
from django.contrib import admin

from .models import Alert, AlertEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Alerts are written by the checks alone: staff read them, nobody edits them here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["title", "state", "since", "detail", "checked_at"]
    list_filter = ["state"]
    fields = ["key", "title", "state", "since", "detail", "next_step", "checked_at"]


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "title", "kind", "text", "notice"]
    list_filter = ["kind", "alert__title"]
    list_select_related = ["alert"]
    date_hierarchy = "at"
    fields = ["alert", "kind", "at", "text", "emailed_at", "posted_at", "attempts", "last_error"]

    @admin.display(description="alert", ordering="alert__title")
    def title(self, event: AlertEvent) -> str:
        return event.alert.title

    @admin.display(description="notice")
    def notice(self, event: AlertEvent) -> str:
        """Where the notice went, and why not where it did not (tried again at the next check)."""
        sent = [name for name, at in (("emailed", event.emailed_at), ("posted", event.posted_at)) if at]
        if event.last_error:
            sent.append(f"failed: {event.last_error}")
        if sent:
            return "; ".join(sent)
        if settings.ADMINS or settings.ALERT_WEBHOOK_URL:
            return "waiting for the next check"
        return "not sent: neither ADMINS nor ALERT_WEBHOOK_URL is set"
