"""The console's admin pages: alerts and their history (read-only), and the queue monitor's entry in the app list
and sidebar ("Operations console › Queue monitor") for staff with its permission; it has no rows and leads to the
monitor's own page."""

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from deliveries.admin_support.page_access import ReadOnlyAdminMixin

from .models import Alert, AlertEvent, QueueMonitor
from .views import MONITOR_PERMISSION


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The console's admin entries are read only: alerts are written by the checks alone, and the queue monitor's
    entry only leads to its page."""


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


@admin.register(QueueMonitor)
class QueueMonitorAdmin(ReadOnlyAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MONITOR_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm(MONITOR_PERMISSION)

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return HttpResponseRedirect(reverse("console:queue-monitor"))
