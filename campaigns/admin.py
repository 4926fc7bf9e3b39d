import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html_join
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
from .models import Contact, ContactList, Segment
from .person_erasure_admin import erase_contacts as erase_contacts_confirmed
from .person_erasure_admin import erasure_allowed
from .resources import COLUMN_ALIASES, ContactResource
from .selectors import segment_contacts


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


Action = AuditEntry.Action


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

    actions = ["erase_contacts"]

    @admin.action(description="Erase these people's data (GDPR)…", permissions=["erase"])
    def erase_contacts(self, request, queryset):
        return erase_contacts_confirmed(self, request, queryset)

    def has_erase_permission(self, request):
        return erasure_allowed(request)

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


# The campaign admin (its page, live panel and lifecycle buttons) is a module of its own; importing it registers it.
from . import campaign_admin  # noqa: E402, F401
