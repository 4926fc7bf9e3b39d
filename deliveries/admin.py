from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .forms import ComposeForm
from .models import ApiKey, Message, MessageEvent, Status
from .services.api_keys import api_key_revoke
from .services.messages import (
    MessageValidationError,
    message_cancel,
    message_create,
    message_request_validate,
    message_retry,
)

STATUS_COLOURS = {
    Status.SCHEDULED: "#6c757d",
    Status.QUEUED: "#0d6efd",
    Status.SENDING: "#6610f2",
    Status.SENT: "#198754",
    Status.DELIVERED: "#146c43",
    Status.UNDELIVERED: "#dc3545",
    Status.FAILED: "#dc3545",
    Status.CANCELLED: "#adb5bd",
    Status.PAUSED: "#fd7e14",
}


def status_badge(status: str, label: str):
    colour = STATUS_COLOURS.get(status, "#6c757d")
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px">{}</span>',
        colour,
        label,
    )


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    fields = ["created_at", "kind", "from_status", "to_status", "code", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["created_at", "id"]
    verbose_name_plural = "Timeline"

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Whoever may see a message may see its timeline.
        return request.user.has_perm("deliveries.view_message") or request.user.has_perm("deliveries.change_message")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "channel",
        "recipient",
        "status_label",
        "summary",
        "send_at",
        "sent_at",
        "attempts",
        "created_at",
    ]
    list_filter = [
        "status",
        "channel",
        "priority",
        ("created_at", admin.DateFieldListFilter),
        ("send_at", admin.DateFieldListFilter),
    ]
    search_fields = ["recipient", "provider_message_id", "subject", "body", "=id"]
    date_hierarchy = "created_at"
    list_select_related = ["template"]
    inlines = [MessageEventInline]
    actions = ["cancel_selected", "retry_selected"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["status_label", "channel", "recipient", "sender", "priority", "send_at", "campaign"]}),
        ("Content", {"fields": ["template", "context", "subject", "body", "html_body"]}),
        (
            "Provider",
            {"fields": ["provider", "provider_message_id", "attempts", "last_error_code", "last_error_message"]},
        ),
        (
            "When",
            {
                "fields": [
                    "created_at",
                    "queued_at",
                    "sending_at",
                    "sent_at",
                    "delivered_at",
                    "failed_at",
                    "cancelled_at",
                ]
            },
        ),
        ("Origin", {"classes": ["collapse"], "fields": ["created_by", "api_key", "metadata", "job_id"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Message._meta.fields] + ["status_label"]

    def has_add_permission(self, request):
        return False  # messages are written through the compose page, which validates and queues them

    def has_delete_permission(self, request, obj=None):
        return False  # the history of what was sent is kept

    def has_cancel_permission(self, request):
        return request.user.has_perm("deliveries.cancel_message")

    def has_retry_permission(self, request):
        return request.user.has_perm("deliveries.retry_message")

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Message")
    def summary(self, obj):
        text = obj.subject or obj.body
        return text if len(text) <= 60 else text[:57] + "…"

    @admin.action(description="Cancel selected messages (scheduled or queued only)", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        by = request.user.get_username()
        done = sum(message_cancel(message=m, by=by) for m in queryset)
        skipped = queryset.count() - done
        self.message_user(
            request,
            f"Cancelled {done} message(s)."
            + (f" {skipped} had already started sending or finished." if skipped else ""),
        )

    @admin.action(description="Retry selected failed messages", permissions=["retry"])
    def retry_selected(self, request, queryset):
        by = request.user.get_username()
        done = sum(message_retry(message=m, by=by) for m in queryset)
        skipped = queryset.count() - done
        self.message_user(
            request,
            f"Queued {done} message(s) again." + (f" {skipped} were not failed, so left alone." if skipped else ""),
        )

    def get_urls(self):
        compose = self.admin_site.admin_view(
            permission_required("deliveries.add_message", raise_exception=True)(self.compose_view)
        )
        return [path("compose/", compose, name="deliveries_message_compose"), *super().get_urls()]

    def compose_view(self, request):
        form = ComposeForm(request.POST or None)
        preview = None
        if request.method == "POST" and form.is_valid():
            data = {k: v for k, v in form.cleaned_data.items()}
            try:
                message_request, content = message_request_validate(**data)
            except MessageValidationError as error:
                for field, errors in error.errors.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                if "_preview" in request.POST:
                    preview = content
                else:
                    message = message_create(request=message_request, content=content, created_by=request.user)
                    verb = "scheduled" if message.status == Status.SCHEDULED else "queued"
                    self.message_user(
                        request, f"Message #{message.pk} to {message.recipient} {verb}.", messages.SUCCESS
                    )
                    return redirect(reverse("admin:deliveries_message_change", args=[message.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Compose a message",
            "form": form,
            "preview": preview,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/deliveries/message/compose.html", context)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "created_at", "last_used_at", "active"]
    readonly_fields = ["name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False  # keys are created with `manage.py create_api_key NAME`, which shows the secret once

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.is_active

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
