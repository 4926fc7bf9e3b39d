import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST
from import_export.admin import ImportMixin
from import_export.formats import base_formats

from content.models import MessageTemplate, MessageTemplateTranslation
from content.services.templates import template_preview
from deliveries.models import AuditEntry
from deliveries.services.audit import audit_record

from .forms import (
    ContactConfirmImportForm,
    ContactForm,
    ContactImportForm,
    MessageTemplateForm,
    SegmentForm,
    TranslationForm,
    TranslationFormSet,
)
from .models import Campaign, CampaignStep, Contact, ContactList, Segment
from .resources import COLUMN_ALIASES, ContactResource
from .selectors import campaign_progress, segment_contacts
from .services.campaign_checks import campaign_format_problems, campaign_normalize, campaign_problems
from .services.campaign_drafts import EDITABLE_FIELDS
from .services.campaign_lifecycle import (
    CampaignStateError,
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)


class TranslationInline(admin.StackedInline):
    model = MessageTemplateTranslation
    form = TranslationForm
    formset = TranslationFormSet
    extra = 0
    verbose_name = "translation"
    verbose_name_plural = "Translations (a contact's language picks one; the template's own content is the fallback)"

    # Translations are part of the template's content: whoever may edit the template may edit them.
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("content.view_messagetemplate") or self.has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        if obj is None and request.user.has_perm("content.add_messagetemplate"):
            return True  # the template's add page
        return request.user.has_perm("content.change_messagetemplate")

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)


def _json_field(raw: str):
    """A JSON form value for the preview; the preview reports what is wrong rather than failing."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # not an object: the preview says so


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    form = MessageTemplateForm
    inlines = [TranslationInline]
    list_display = ["name", "slug", "channel", "language", "translation_languages", "updated_at"]
    list_filter = ["channel", "language"]
    search_fields = ["name", "slug", "subject", "body"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["saved_preview"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "channel", "language"]}),
        (
            "Variables",
            {
                "fields": ["variables", "sample_context"],
                "description": "A contact's fields fill name, first_name, phone, email, language and time_zone: "
                "use them without declaring them (declare one only to give it a default for contacts who left it "
                "blank). Declare here every other variable the content uses, such as a custom attribute (an "
                'extra column of a contact import, like plan): {"plan": null} makes it required, {"plan": '
                '"basic"} gives a default. A contact\'s custom attribute fills the variable of the same name. '
                "Sent without a contact (the compose page, the API), the context must give each required "
                "variable, contact fields included.",
            },
        ),
        ("Content", {"fields": ["subject", "body", "html_body"]}),
        ("Preview of the saved version, with the sample values", {"fields": ["saved_preview"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("translations")

    @admin.display(description="Translations")
    def translation_languages(self, obj):
        return ", ".join(t.language for t in obj.translations.all()) or "—"

    @admin.display(description="Preview")
    def saved_preview(self, obj):
        if obj is None or obj.pk is None:
            return "Save the template to see every language version here; the live preview is below the form."
        versions = [(obj.language, obj.subject, obj.body, obj.html_body)]
        versions += [(t.language, t.subject, t.body, t.html_body) for t in obj.translations.all()]
        previews = [
            (
                language,
                template_preview(
                    channel=obj.channel,
                    subject=subject,
                    body=body,
                    html_body=html_body,
                    variables=obj.variables,
                    sample_context=obj.sample_context,
                    language=language,
                ),
            )
            for language, subject, body, html_body in versions
        ]
        return render_to_string("admin/content/messagetemplate/saved_preview.html", {"previews": previews})

    def get_urls(self):
        preview = self.admin_site.admin_view(require_POST(self.preview_view))
        return [path("preview/", preview, name="content_messagetemplate_preview"), *super().get_urls()]

    def preview_view(self, request):
        """The live preview: renders the form's current content with its sample values, as JSON."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        preview = template_preview(
            channel=request.POST.get("channel", ""),
            subject=request.POST.get("subject", ""),
            body=request.POST.get("body", ""),
            html_body=request.POST.get("html_body", ""),
            variables=_json_field(request.POST.get("variables", "")),
            sample_context=_json_field(request.POST.get("sample_context", "")),
        )
        return JsonResponse(preview.as_dict())

    def render_change_form(self, request, context, *args, **kwargs):
        context["preview_url"] = reverse("admin:content_messagetemplate_preview")
        return super().render_change_form(request, context, *args, **kwargs)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            action=Action.TEMPLATE_CHANGED,
            target=obj,
            request=request,
            details={"change": "changed" if change else "created", "fields": form.changed_data},
        )

    def delete_model(self, request, obj):
        audit_record(action=Action.TEMPLATE_CHANGED, target=obj, request=request, details={"change": "deleted"})
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for template in queryset:
            self.delete_model(request, template)


@admin.register(Contact)
class ContactAdmin(ImportMixin, admin.ModelAdmin):
    """Contacts, with Import (CSV) on the list page: a dry run shows every row first, new, changed, unchanged or
    rejected with its line and reason; nothing is saved until the file has no rejected row and is confirmed."""

    form = ContactForm
    resource_classes = [ContactResource]
    import_formats = [base_formats.CSV]
    import_form_class = ContactImportForm
    confirm_form_class = ContactConfirmImportForm
    import_template_name = "admin/campaigns/contact/import.html"
    list_display = ["__str__", "phone", "email", "language", "sms_consent", "whatsapp_consent", "email_consent"]
    list_filter = ["sms_consent", "whatsapp_consent", "email_consent", "language", "lists"]
    search_fields = ["name", "=phone", "email"]
    filter_horizontal = ["lists"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "phone", "email", "language", "time_zone"]}),
        ("Consent", {"fields": ["sms_consent", "whatsapp_consent", "email_consent"]}),
        ("Attributes and lists", {"fields": ["attributes", "lists"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def has_import_permission(self, request):
        # IMPORT_EXPORT_IMPORT_PERMISSION_CODE asks for add only, but an import also changes existing contacts.
        return request.user.has_perms(["campaigns.add_contact", "campaigns.change_contact"])

    def get_import_context_data(self, **kwargs):
        return {**super().get_import_context_data(**kwargs), "column_aliases": sorted(COLUMN_ALIASES.items())}

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        data = getattr(form, "cleaned_data", None) or {}
        return {"list_name": data.get("list_name", "")}

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["list_name"] = import_form.cleaned_data.get("list_name", "")
        return initial


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = ["name", "contact_count", "created_at"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(contact_count=Count("contacts"))

    @admin.display(description="Contacts", ordering="contact_count")
    def contact_count(self, obj):
        return obj.contact_count


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ["name", "contact_list", "match", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["matching_contacts"]
    fields = ["name", "description", "contact_list", "match", "filters", "matching_contacts"]

    @admin.display(description="Matching contacts now")
    def matching_contacts(self, obj):
        if obj is None or obj.pk is None:
            return "Save the segment to see the contacts it selects."
        contacts = segment_contacts(segment=obj)
        first = list(contacts[:20])
        listed = format_html_join(
            "",
            '<li><a href="{}">{}</a></li>',
            ((reverse("admin:campaigns_contact_change", args=[c.pk]), c) for c in first),
        )
        return render_to_string(
            "admin/campaigns/segment/matching_contacts.html",
            {"count": contacts.count(), "listed": listed, "shown": len(first)},
        )


# Colours of the progress bar, one per part, in the order they are drawn.
PROGRESS_PARTS = [
    ("delivered", "Delivered", "#146c43"),
    ("sent_only", "Sent", "#198754"),
    ("queued", "Queued", "#0d6efd"),
    ("waiting", "Waiting", "#6c757d"),
    ("failed", "Failed", "#dc3545"),
    ("suppressed", "Suppressed", "#6f42c1"),
    ("cancelled", "Cancelled", "#adb5bd"),
]
CAMPAIGN_COLOURS = {
    Campaign.Status.DRAFT: "#6c757d",
    Campaign.Status.SCHEDULED: "#0d6efd",
    Campaign.Status.RUNNING: "#6610f2",
    Campaign.Status.PAUSED: "#fd7e14",
    Campaign.Status.COMPLETED: "#198754",
    Campaign.Status.CANCELLED: "#adb5bd",
}
Action = AuditEntry.Action
# Lifecycle actions: the service, the permission it needs, what to say when it worked, and its audit entry.
LIFECYCLE = {
    "launch": (campaign_launch, "campaigns.launch_campaign", "launched", Action.CAMPAIGN_LAUNCHED),
    "pause": (campaign_pause, "campaigns.pause_campaign", "paused", Action.CAMPAIGN_PAUSED),
    "resume": (campaign_resume, "campaigns.pause_campaign", "resumed", Action.CAMPAIGN_RESUMED),
    "cancel": (campaign_cancel, "campaigns.cancel_campaign", "cancelled", Action.CAMPAIGN_CANCELLED),
}


def progress_context(campaign: Campaign) -> dict:
    progress = campaign_progress(campaign=campaign)
    progress["sent_only"] = progress["sent"] - progress["delivered"] - progress["by_status"].get("undelivered", 0)
    total = max(progress["targeted"], 1)
    bars = [
        {"key": key, "label": label, "colour": colour, "count": progress[key], "width": 100 * progress[key] / total}
        for key, label, colour in PROGRESS_PARTS
    ]
    return {"campaign": campaign, "progress": progress, "bars": bars}


class CampaignForm(forms.ModelForm):
    """A draft may be incomplete, but what it holds must be usable (the same checks as the API's)."""

    class Meta:
        model = Campaign
        fields = list(EDITABLE_FIELDS)

    def _post_clean(self):
        super()._post_clean()
        campaign_normalize(self.instance)
        for field, texts in campaign_format_problems(self.instance).items():
            self.add_error(field if field in self.fields else None, texts)


class CampaignStepInline(admin.TabularInline):
    """The follow-ups of a multi-step campaign (the campaign's own template is step 0); editable in a draft only,
    like the rest of the campaign."""

    model = CampaignStep
    extra = 0
    fields = ["position", "template", "condition", "delay", "window"]
    verbose_name = "follow-up step"
    verbose_name_plural = "Follow-up steps (each sent to a contact after their previous message meets the condition)"

    def _draft(self, obj) -> bool:
        return obj is None or obj.status == Campaign.Status.DRAFT

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._draft(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._draft(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._draft(obj)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """Campaigns: edit a draft, then launch, pause, resume or cancel it (each a permission of its own), and
    follow its progress on its page, refreshed every few seconds while it runs."""

    form = CampaignForm
    inlines = [CampaignStepInline]
    list_display = ["name", "status_label", "schedule_summary", "targeted", "progress_summary", "launched_at"]
    list_filter = ["status", "schedule"]
    search_fields = ["name"]
    list_select_related = ["template"]
    actions = ["launch_selected", "pause_selected", "resume_selected", "cancel_selected"]
    history_fields = [
        "parent",
        "occurrence_at",
        "launched_at",
        "starts_at",
        "paused_at",
        "completed_at",
        "cancelled_at",
        "created_by",
        "created_at",
    ]
    readonly_fields = ["status_label", "progress_panel", "launch_problems", "next_run_at", *history_fields]
    fieldsets = [
        (None, {"fields": ["name", "status_label", "progress_panel", "launch_problems"]}),
        ("What and to whom", {"fields": ["template", "contact_list", "segment"]}),
        (
            "When",
            {
                "fields": ["schedule", "send_at", "local_time", "local_date", "time_zone", "recurrence", "next_run_at"],
                "description": "Send now, at a time, or at a local time of day in each recipient's time zone "
                "(contacts without one use the campaign's). A cron recurrence ('0 9 * * MON') makes each "
                "occurrence a campaign of its own, sent at once to the audience as it is then.",
            },
        ),
        (
            "Pace",
            {"fields": ["priority", "rate_limit_per_minute", "quiet_hours_start", "quiet_hours_end"]},
        ),
        ("History", {"fields": [*history_fields]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            # Once launched, what was sent stays what the campaign says it was.
            return [f.name for f in Campaign._meta.fields] + list(self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        # A launched campaign is history: cancel it instead.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Campaign.Status.DRAFT)

    def has_launch_permission(self, request):
        return request.user.has_perm("campaigns.launch_campaign")

    def has_pause_permission(self, request):
        return request.user.has_perm("campaigns.pause_campaign")

    def has_cancel_permission(self, request):
        return request.user.has_perm("campaigns.cancel_campaign")

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj):
        colour = CAMPAIGN_COLOURS.get(obj.status, "#6c757d")
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px">{}</span>',
            colour,
            obj.get_status_display(),
        )

    @admin.display(description="When")
    def schedule_summary(self, obj):
        if obj.recurrence:
            return f"Every '{obj.recurrence}' ({obj.time_zone or 'server time'})"
        if obj.schedule == Campaign.Schedule.AT and obj.send_at:
            return f"At {timezone.localtime(obj.send_at):%Y-%m-%d %H:%M}"
        if obj.schedule == Campaign.Schedule.LOCAL_TIME and obj.local_time:
            day = f"{obj.local_date:%Y-%m-%d} " if obj.local_date else ""
            return f"{day}{obj.local_time:%H:%M} recipient's time"
        return "Now"

    @admin.display(description="Progress")
    def progress_summary(self, obj):
        if obj.status == Campaign.Status.DRAFT:
            return "—"
        return render_to_string("admin/campaigns/campaign/progress_bar.html", progress_context(obj))

    @admin.display(description="Progress")
    def progress_panel(self, obj):
        if obj is None or obj.pk is None or obj.status == Campaign.Status.DRAFT:
            return "Launch the campaign to follow its progress here."
        context = progress_context(obj)
        context["url"] = reverse("admin:campaigns_campaign_progress", args=[obj.pk])
        context["live"] = obj.status in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)
        return render_to_string("admin/campaigns/campaign/progress.html", context)

    @admin.display(description="Before launching")
    def launch_problems(self, obj):
        if obj is None or obj.pk is None or obj.status != Campaign.Status.DRAFT:
            return "—"
        problems = [text for texts in campaign_problems(obj).values() for text in texts]
        if not problems:
            return "Ready to launch."
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((p,) for p in problems)))

    # --- Lifecycle: list actions and buttons on the campaign page, all through the same services ---

    def _run(self, request, campaigns, name: str) -> None:
        service, _permission, verb, audit_action = LIFECYCLE[name]
        done, refused = [], []
        for campaign in campaigns:
            try:
                service(campaign=campaign, by=request.user.get_username())
                audit_record(action=audit_action, target=campaign, request=request)
                done.append(campaign.name)
            except (CampaignStateError, ValidationError) as error:
                reasons = error.messages if isinstance(error, ValidationError) else [str(error)]
                refused.append(f"{campaign.name}: {' '.join(reasons)}")
        if done:
            self.message_user(request, f"{verb.capitalize()}: {', '.join(done)}.", messages.SUCCESS)
        for text in refused:
            self.message_user(request, f"Not {verb}: {text}", messages.ERROR)

    @admin.action(description="Launch selected drafts", permissions=["launch"])
    def launch_selected(self, request, queryset):
        self._run(request, queryset, "launch")

    @admin.action(description="Pause selected campaigns", permissions=["pause"])
    def pause_selected(self, request, queryset):
        self._run(request, queryset, "pause")

    @admin.action(description="Resume selected campaigns", permissions=["pause"])
    def resume_selected(self, request, queryset):
        self._run(request, queryset, "resume")

    @admin.action(description="Cancel selected campaigns (their unsent messages are cancelled)", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        self._run(request, queryset, "cancel")

    def get_urls(self):
        progress = self.admin_site.admin_view(self.progress_view)
        lifecycle = self.admin_site.admin_view(require_POST(self.lifecycle_view))
        return [
            path("<int:object_id>/progress/", progress, name="campaigns_campaign_progress"),
            *(
                path(f"<int:object_id>/{name}/", lifecycle, {"action": name}, name=f"campaigns_campaign_{name}")
                for name in LIFECYCLE
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request, object_id):
        """The progress counts as JSON, for the campaign page's live panel."""
        campaign = get_object_or_404(Campaign, pk=object_id)
        if not self.has_view_or_change_permission(request, campaign):
            raise PermissionDenied
        progress = campaign_progress(campaign=campaign)
        return JsonResponse({"status": campaign.status, "status_label": campaign.get_status_display(), **progress})

    def lifecycle_view(self, request, object_id, action):
        if not request.user.has_perm(LIFECYCLE[action][1]):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=object_id)
        self._run(request, [campaign], action)
        return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        if obj is not None:
            allowed = {
                Campaign.Status.DRAFT: ["launch", "cancel"],
                Campaign.Status.SCHEDULED: ["pause", "cancel"],
                Campaign.Status.RUNNING: ["pause", "cancel"],
                Campaign.Status.PAUSED: ["resume", "cancel"],
            }.get(obj.status, [])
            context["lifecycle_buttons"] = [
                (name, reverse(f"admin:campaigns_campaign_{name}", args=[obj.pk]))
                for name in allowed
                if request.user.has_perm(LIFECYCLE[name][1])
            ]
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)
