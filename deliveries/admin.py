from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join

from .admin_support import archive_files  # noqa: F401 - registers the archive files' page
from .admin_support.compose import compose_view
from .admin_support.filters import CreatedRangeFilter, list_scopes
from .admin_support.held import HeldMessageActions
from .admin_support.message_page import (
    STATUS_COLOURS,
    error_code_link,
    fieldsets_with_values,
    seconds_display,
    status_badge,
    timeline_state,
    with_seconds,
)
from .admin_support.page_access import ReadOnlyAdminMixin, SuperusersOnlyMixin
from .admin_support.paginator import EstimatedCountPaginator
from .admin_support.views import EXPORT_PERMISSION, MessageAdminViews
from .forms import ApiKeyCountriesForm, SuppressionForm
from .health import providers_status
from .models import ApiKey, AuditEntry, Batch, InboundMessage, Message, Status, Suppression
from .selectors import batch_status_counts, message_outcome_summary, message_search_condition
from .services.api_keys import api_key_revoke
from .services.audit import audit_record, audit_record_each
from .services.dependencies import dependency_describe
from .services.messages import (
    message_cancel,
    message_retry,
    message_review_mark_failed,
    message_review_mark_sent,
    message_review_resend,
)
from .services.suppression import (
    suppression_add,
    suppression_blocks,
    suppression_entry_delete,
    suppression_for,
    suppression_hashes_of,
)

# What message_cancel accepts: a message that has not started sending.
CANCELLABLE = frozenset({Status.SCHEDULED, Status.QUEUED, Status.WAITING, Status.HELD})
REVIEW_ACTIONS = ["resend_reviewed", "mark_reviewed_sent", "mark_reviewed_failed"]


@admin.register(Message)
class MessageAdmin(MessageAdminViews, HeldMessageActions, admin.ModelAdmin):
    list_display = ["id", "status_label", "to", "summary", "when", "engagement"]
    list_filter = ["status", "channel", "category", "priority", CreatedRangeFilter]
    # Searched by get_search_results, each way exact and indexed; the field here only shows the search box.
    search_fields = ["recipient"]
    search_help_text = (
        "Exact: a recipient (+14155550100, ada@example.com), a provider message id, a message id, "
        "or a campaign's name or campaign:ID."
    )
    # At a million rows: counts estimated past a threshold (the paginator), no facet counts, no date hierarchy
    # (it reads the distinct dates of the whole table), sorting only by the indexed columns.
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    sortable_by = ["id", "when"]
    list_select_related = ["template"]
    change_form_template = "admin/deliveries/message/change_form.html"
    actions = ["cancel_selected", "retry_selected", "release_selected", *REVIEW_ACTIONS]
    fieldsets = [
        # The status leads the page above the timeline (it is refreshed there while the message is in flight).
        (None, {"fields": ["channel", "recipient", "suppression", "sender", "category", "purpose", "priority"]}),
        ("Schedule and campaign", {"fields": ["send_at_s", "expires_at_s", "campaign", "batch"]}),
        (
            "Content",
            {
                "fields": [
                    "template",
                    "context",
                    "subject",
                    "body",
                    "html_body",
                    "media_urls",
                    "content_sid",
                    "content_variables",
                ]
            },
        ),
        # The parent's link, status, the condition, delay and window in one line; then who waits for this one.
        ("Dependency", {"fields": ["dependency", "dependents_list"]}),
        (
            "Engagement",
            {"fields": ["opens_count", "first_opened_at_s", "clicks_count", "first_clicked_at_s", "read_at_s"]},
        ),
        (
            "Provider",
            {
                "fields": [
                    "provider",
                    "provider_message_id",
                    "estimated_cost_s",
                    "actual_cost_s",
                    "attempts",
                    "error_code",
                    "last_error_message",
                ]
            },
        ),
        (
            "When",
            {
                "fields": [
                    "created_at_s",
                    "queued_at_s",
                    "sending_at_s",
                    "sent_at_s",
                    "delivered_at_s",
                    "failed_at_s",
                    "cancelled_at_s",
                ]
            },
        ),
        ("Origin", {"classes": ["collapse"], "fields": ["created_by", "api_key", "metadata", "job_id"]}),
    ]
    # Date-times to the second on the page (the admin's own format drops the seconds).
    send_at_s = seconds_display("send_at")
    expires_at_s = seconds_display("expires_at")
    first_opened_at_s = seconds_display("first_opened_at")
    first_clicked_at_s = seconds_display("first_clicked_at")
    read_at_s = seconds_display("read_at")
    created_at_s = seconds_display("created_at")
    queued_at_s = seconds_display("queued_at")
    sending_at_s = seconds_display("sending_at")
    sent_at_s = seconds_display("sent_at")
    delivered_at_s = seconds_display("delivered_at")
    failed_at_s = seconds_display("failed_at")
    cancelled_at_s = seconds_display("cancelled_at")

    @admin.display(description="estimated cost")
    def estimated_cost_s(self, obj: Message) -> str:
        """The price list's estimate when the message was created (docs/guard.md)."""
        return f"{obj.estimated_cost} {obj.cost_currency}"

    @admin.display(description="actual cost")
    def actual_cost_s(self, obj: Message) -> str:
        """What the provider billed, once it said (docs/guard.md, "Actual prices")."""
        return f"{obj.actual_cost} {obj.actual_cost_currency}"

    def get_fieldsets(self, request, obj=None):
        """Only the fields with something to say: most of a message's fields are empty for its channel."""
        return self.fieldsets if obj is None else fieldsets_with_values(self.fieldsets, obj)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Message._meta.fields] + [
            "status_label",
            "suppression",
            "dependency",
            "dependents_list",
            "error_code",
            "estimated_cost_s",
            "actual_cost_s",
            *(name for name in dir(self) if name.endswith("_at_s")),
        ]

    def has_add_permission(self, request):
        return False  # messages are written through the compose page, which validates and queues them

    def has_delete_permission(self, request, obj=None):
        return False  # the history of what was sent is kept

    def has_cancel_permission(self, request):
        return request.user.has_perm("deliveries.cancel_message")

    def has_retry_permission(self, request):
        return request.user.has_perm("deliveries.retry_message")

    def has_review_permission(self, request):
        return request.user.has_perm("deliveries.review_message")

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj):
        badge = status_badge(obj.status, obj.get_status_display())
        if obj.attempts > 1:
            badge = format_html('{} <small title="attempts">×{}</small>', badge, obj.attempts)
        if obj.last_error_code and obj.status in (Status.FAILED, Status.UNDELIVERED, Status.REVIEW):
            code = error_code_link(obj.provider, obj.last_error_code)
            return format_html('{}<small class="error-code">{}</small>', badge, code)
        return badge

    @admin.display(description="When", ordering="created_at")
    def when(self, obj):
        """The moment that matters most for the message's current status."""
        if obj.status == Status.SCHEDULED and obj.send_at:
            return format_html("due {}", with_seconds(obj.send_at, short=True))
        moment = obj.delivered_at or obj.sent_at or obj.failed_at or obj.cancelled_at or obj.created_at
        return with_seconds(moment, short=True)

    @admin.display(description="To")
    def to(self, obj):
        # Channel and recipient in one column: the list fits 1,280 px with the sidebars open.
        return format_html(
            '<small class="channel">{}</small><span class="recipient" title="{}">{}</span>',
            obj.get_channel_display(),
            obj.recipient,
            obj.recipient,
        )

    @admin.display(description="Opens / clicks")
    def engagement(self, obj):
        return f"{obj.opens_count} / {obj.clicks_count}" if obj.channel == "email" else "—"

    @admin.display(description="Last error code")
    def error_code(self, obj):
        return error_code_link(obj.provider, obj.last_error_code)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "title": "Message"})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Every field is read-only: no Save buttons. What a person can do is Cancel or Retry, when the status and
        # their permissions allow it (the services decide again when they are pressed).
        context.update(show_save=False, show_save_and_continue=False, show_save_and_add_another=False)
        if obj is not None:
            context.update(
                title=f"Message #{obj.pk}",
                timeline=timeline_state(obj, STATUS_COLOURS),
                error_code_link=error_code_link(obj.provider, obj.last_error_code) if obj.last_error_code else "",
                can_cancel=obj.status in CANCELLABLE and self.has_cancel_permission(request),
                can_retry=obj.status == Status.FAILED and self.has_retry_permission(request),
                can_release=obj.status == Status.HELD and self.has_release_permission(request),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Suppression")
    def suppression(self, obj):
        entry = suppression_for(channel=obj.channel, address=obj.recipient)
        if entry is None:
            return "Not suppressed"
        url = reverse("admin:deliveries_suppression_change", args=[entry.pk])
        effect = "blocks" if suppression_blocks(entry, category=obj.category) else "does not block (transactional)"
        since = f"{entry.created_at:%Y-%m-%d %H:%M}"
        return format_html(
            '<a href="{}">{}</a> since {} ({}): {} this message',
            url,
            entry.get_reason_display(),
            since,
            entry.source or "no source",
            effect,
        )

    @admin.display(description="Waits for")
    def dependency(self, obj):
        if obj.depends_on_id is None:
            return "Nothing: sent on its own"
        url = reverse("admin:deliveries_message_change", args=[obj.depends_on_id])
        return format_html(
            '<a href="{}">Message #{}</a> ({}): {}',
            url,
            obj.depends_on_id,
            obj.depends_on.get_status_display(),
            dependency_describe(obj),
        )

    @admin.display(description="Messages waiting for this one")
    def dependents_list(self, obj):
        dependents = list(obj.dependents.order_by("pk").values_list("pk", "status")[:20])
        if not dependents:
            return "None"
        return format_html_join(
            ", ",
            '<a href="{}">#{}</a> ({})',
            (
                (reverse("admin:deliveries_message_change", args=[pk]), pk, Status(status).label)
                for pk, status in dependents
            ),
        )

    @admin.display(description="Message")
    def summary(self, obj):
        # One line, cut by the column's width (the list's CSS); the whole text in the tooltip, up to a point.
        text = obj.subject or obj.body
        return format_html('<span class="message-summary" title="{}">{}</span>', text[:300], text[:120])

    def _apply_to_each(
        self, request, queryset, service, done_text: str, skipped_text: str, *, action: str, details=None
    ) -> None:
        """Run a per-message service on each selected message, record those it changed in the audit trail, and
        say how many it changed and how many not."""
        by = request.user.get_username()
        changed = [m for m in queryset if service(message=m, by=by)]
        audit_record_each(action=action, targets=changed, request=request, details=details)
        skipped = queryset.count() - len(changed)
        self.message_user(request, done_text.format(len(changed)) + (f" {skipped} {skipped_text}" if skipped else ""))

    @admin.action(description="Cancel selected messages that have not started sending", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        self._apply_to_each(
            request,
            queryset,
            message_cancel,
            "Cancelled {} message(s).",
            "had already started sending or finished.",
            action=AuditEntry.Action.MESSAGE_CANCELLED,
        )

    @admin.action(description="Retry selected failed messages", permissions=["retry"])
    def retry_selected(self, request, queryset):
        self._apply_to_each(
            request,
            queryset,
            message_retry,
            "Queued {} message(s) again.",
            "were not failed, so left alone.",
            action=AuditEntry.Action.MESSAGE_RETRIED,
        )

    def _settle_reviewed(self, request, queryset, service, done_text: str, *, resolution: str):
        self._apply_to_each(
            request,
            queryset,
            service,
            done_text,
            "did not need review, so left alone.",
            action=AuditEntry.Action.MESSAGE_REVIEWED,
            details={"resolution": resolution},
        )

    @admin.action(
        description="Needs review: send selected again (the provider does not have them)", permissions=["review"]
    )
    def resend_reviewed(self, request, queryset):
        self._settle_reviewed(
            request, queryset, message_review_resend, "Queued {} message(s) again.", resolution="sent again"
        )

    @admin.action(description="Needs review: mark selected as sent (the provider has them)", permissions=["review"])
    def mark_reviewed_sent(self, request, queryset):
        self._settle_reviewed(
            request, queryset, message_review_mark_sent, "Marked {} message(s) sent.", resolution="marked sent"
        )

    @admin.action(description="Needs review: mark selected as failed", permissions=["review"])
    def mark_reviewed_failed(self, request, queryset):
        self._settle_reviewed(
            request, queryset, message_review_mark_failed, "Marked {} message(s) failed.", resolution="marked failed"
        )

    def changelist_view(self, request, extra_context=None):
        # The providers' breakers and rates above the list: why messages are waiting, when they will go.
        extra_context = {**(extra_context or {}), "providers": providers_status()}
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:  # not a redirect or an action's response
            response.context_data["scopes"] = list_scopes(changelist)
            response.context_data["can_export"] = request.user.has_perm(EXPORT_PERMISSION)
            # The summary reads every row the list selects: only where the count was exact (a bounded list).
            if not changelist.paginator.estimated:
                response.context_data["summary"] = message_outcome_summary(changelist.queryset)
        return response

    def get_search_results(self, request, queryset, search_term):
        """Exact search, each way indexed (selectors.message_search_condition); no LIKE over a million rows."""
        if not search_term.strip():
            return queryset, False
        return queryset.filter(message_search_condition(search_term)), False

    def get_urls(self):
        compose = self.admin_site.admin_view(
            permission_required("deliveries.add_message", raise_exception=True)(self.compose_view)
        )
        return [
            path("compose/", compose, name="deliveries_message_compose"),
            *self.message_urls(),
            *super().get_urls(),
        ]

    def compose_view(self, request):
        return compose_view(self, request)


@admin.register(ApiKey)
class ApiKeyAdmin(SuperusersOnlyMixin, admin.ModelAdmin):
    """Keys, for superusers only (a key can do what its scopes allow any API client): read and revoked here, and
    their countries narrowed; scopes, expiry, rate and senders are set when a key is created."""

    form = ApiKeyCountriesForm

    list_display = ["name", "prefix", "scope_list", "expires_at", "rate", "last_used_at", "created_at", "active"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = [
        "name",
        "prefix",
        "scope_list",
        "expires_at",
        "rate",
        "sender_list",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    fields = [*readonly_fields, "allowed_countries"]
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False  # keys are created with `manage.py create_api_key NAME`, which shows the secret once

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.is_active

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes) or "none"

    @admin.display(description="Allowed senders")
    def sender_list(self, obj):
        return ", ".join(obj.allowed_senders) or "any"

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        active = [api_key for api_key in queryset if api_key.revoked_at is None]
        for api_key in active:
            api_key_revoke(api_key=api_key)
        audit_record_each(action=AuditEntry.Action.KEY_REVOKED, targets=active, request=request)
        self.message_user(request, f"Revoked {len(active)} key(s).")


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """The suppression list. Entries come from providers (STOP replies, bounces, complaints, unsubscribes) and
    from people, who add them here with the reason "Added by hand"."""

    form = SuppressionForm
    list_display = ["listed_address", "channel", "reason", "source", "created_at"]
    list_filter = ["channel", "reason", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["address", "source", "detail"]
    date_hierarchy = "created_at"
    readonly_fields = ["source", "message", "created_by", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # An entry's channel, address and reason are what it is; change them by removing it and adding another.
        return self.readonly_fields + (["channel", "address", "reason"] if obj else [])

    def get_changeform_initial_data(self, request):
        return {"reason": Suppression.Reason.MANUAL}

    @admin.display(description="Address", ordering="address")
    def listed_address(self, obj):
        return obj.address or "(erased person, kept as a hash)"

    def get_search_results(self, request, queryset, search_term):
        # An erased person's entry has no address to search: a term that is their address finds it by its hash.
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            hashes = {digest for channel in ("email", "sms") for digest in suppression_hashes_of(channel, term)}
            results |= queryset.filter(address_hash__in=hashes)
        return results, may_have_duplicates

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["detail", "updated_at"])
            return
        entry = suppression_add(
            channel=obj.channel,
            address=obj.address,
            reason=obj.reason,
            source=f"admin: {request.user.get_username()}",
            detail=obj.detail,
            created_by=request.user,
        )
        obj.pk = entry.pk
        audit_record(
            action=AuditEntry.Action.SUPPRESSION_ADDED, target=entry, request=request, details={"reason": entry.reason}
        )

    def has_delete_permission(self, request, obj=None):
        # Lifting a suppression sends again to someone who bounced, complained or was blocked: superusers only.
        return request.user.is_active and request.user.is_superuser

    def delete_model(self, request, obj):
        if suppression_entry_delete(suppression=obj):
            audit_record(
                action=AuditEntry.Action.SUPPRESSION_LIFTED, target=obj, request=request, details={"reason": obj.reason}
            )

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            self.delete_model(request, entry)


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "channel", "sender", "recipient", "keyword", "body"]
    list_filter = ["channel", "keyword", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["sender", "body", "provider_message_id"]
    date_hierarchy = "received_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in InboundMessage._meta.fields]

    def has_add_permission(self, request):
        return False  # they arrive from providers

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, SuperusersOnlyMixin, admin.ModelAdmin):
    """The audit trail, for superusers only and read-only for them too: entries are written by audit_record and
    deleted only by the retention sweep (AUDIT_RETENTION_DAYS)."""

    list_display = ["created_at", "actor", "action", "target_link", "ip_address"]
    list_filter = ["action", "actor", ("created_at", admin.DateFieldListFilter)]  # actor: a user, a key, a command
    search_fields = ["actor", "target_repr", "=target_id", "=ip_address"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    show_full_result_count = False
    fields = [
        "created_at",
        "action",
        "actor",
        "user",
        "api_key_id",
        "target_type",
        "target_id",
        "target_link",
        "ip_address",
        "details",
    ]

    @admin.display(description="Target", ordering="target_repr")
    def target_link(self, obj):
        if not obj.target_type or not obj.target_id:
            return obj.target_repr or "—"
        app_label, _, model_name = obj.target_type.partition(".")
        try:
            url = reverse(f"admin:{app_label}_{model_name}_change", args=[obj.target_id])
        except NoReverseMatch:
            return obj.target_repr
        return format_html('<a href="{}">{}</a>', url, obj.target_repr)


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    """Bulk sends, read-only: API batches and send_bulk runs, with their messages counted by status."""

    list_display = ["__str__", "kind", "accepted", "rejected", "created_at", "finished_at"]
    list_filter = ["kind"]
    search_fields = ["key", "file_name"]
    readonly_fields = ["messages_by_status"]

    def has_add_permission(self, request):
        return False  # batches are made by the API and send_bulk

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a batch is the record of a bulk send; its messages point to it

    @admin.display(description="Messages by status")
    def messages_by_status(self, obj):
        counts = batch_status_counts(batch=obj)
        url = reverse("admin:deliveries_message_changelist")
        return format_html(
            '{} — <a href="{}?batch__id__exact={}">see the messages</a>',
            ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "none",
            url,
            obj.pk,
        )
