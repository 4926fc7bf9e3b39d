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
    list_display = ["at", "alert", "kind", "text", "emailed_at", "posted_at", "attempts", "last_error"]
    list_filter = ["kind", "alert__title"]
    list_select_related = ["alert"]
    date_hierarchy = "at"
    fields = ["alert", "kind", "at", "text", "emailed_at", "posted_at", "attempts", "last_error"]
