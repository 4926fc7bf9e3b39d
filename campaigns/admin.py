import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from .forms import MessageTemplateForm, TranslationForm, TranslationFormSet
from .models import Campaign, MessageTemplate, MessageTemplateTranslation
from .services.templates import template_preview


class TranslationInline(admin.StackedInline):
    model = MessageTemplateTranslation
    form = TranslationForm
    formset = TranslationFormSet
    extra = 0
    verbose_name = "translation"
    verbose_name_plural = "Translations (a contact's language picks one; the template's own content is the fallback)"

    # Translations are part of the template's content: whoever may edit the template may edit them.
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("campaigns.view_messagetemplate") or self.has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        if obj is None and request.user.has_perm("campaigns.add_messagetemplate"):
            return True  # the template's add page
        return request.user.has_perm("campaigns.change_messagetemplate")

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
                "description": "Every variable the content uses must be declared here. A contact's fields and "
                "attributes fill the variables of the same name (name, first_name, phone, email, language, "
                "time_zone and each custom attribute).",
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
        return render_to_string("admin/campaigns/messagetemplate/saved_preview.html", {"previews": previews})

    def get_urls(self):
        preview = self.admin_site.admin_view(require_POST(self.preview_view))
        return [path("preview/", preview, name="campaigns_messagetemplate_preview"), *super().get_urls()]

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
        context["preview_url"] = reverse("admin:campaigns_messagetemplate_preview")
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "created_at"]
    search_fields = ["name"]
