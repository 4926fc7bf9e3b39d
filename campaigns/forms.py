"""Admin forms. They parse input and ask the services whether it is acceptable; the rules live there."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from import_export.forms import ConfirmImportForm, ImportForm

from content.models import MessageTemplate, MessageTemplateTranslation
from content.services.templates import template_translation_validate, template_validate

from .models import Contact, Segment
from .segment_filters import segment_filters_clean
from .services.contacts import contact_fields_clean

_CODE = {"class": "vLargeTextField", "style": "font-family: monospace", "spellcheck": "false"}


def _add_errors(form: forms.BaseForm, error: ValidationError) -> None:
    for name, messages in error.message_dict.items():
        form.add_error(name if name in form.fields else None, messages)


TEMPLATE_FIELDS = ["name", "slug", "channel", "language", "variables", "subject", "body", "html_body", "sample_context"]


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = TEMPLATE_FIELDS
        widgets = {
            "body": forms.Textarea(attrs={**_CODE, "rows": 8}),
            "html_body": forms.Textarea(attrs={**_CODE, "rows": 14}),
            "variables": forms.Textarea(attrs={**_CODE, "rows": 4}),
            "sample_context": forms.Textarea(attrs={**_CODE, "rows": 4}),
        }

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned  # the content checks need valid JSON and a channel first
        candidate = MessageTemplate(**{name: cleaned.get(name) for name in TEMPLATE_FIELDS})
        try:
            template_validate(candidate)
        except ValidationError as error:
            _add_errors(self, error)
        else:
            cleaned["variables"] = candidate.variables
            cleaned["language"] = candidate.language
        return cleaned


class TranslationFormSet(forms.BaseInlineFormSet):
    """Checks each translation against the template as it is being saved (its channel and new variables)."""

    def clean(self):
        template = self.instance
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            try:
                data["language"] = template_translation_validate(
                    template=template,
                    language=data.get("language") or "",
                    subject=data.get("subject") or "",
                    body=data.get("body") or "",
                    html_body=data.get("html_body") or "",
                )
                form.instance.language = data["language"]
            except ValidationError as error:
                _add_errors(form, error)
        super().clean()  # the one-per-language check, on the normalised codes


class TranslationForm(forms.ModelForm):
    class Meta:
        model = MessageTemplateTranslation
        fields = ["language", "subject", "body", "html_body"]
        widgets = {
            "body": forms.Textarea(attrs={**_CODE, "rows": 4}),
            "html_body": forms.Textarea(attrs={**_CODE, "rows": 6}),
        }


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = [
            "name",
            "phone",
            "email",
            "language",
            "time_zone",
            "sms_consent",
            "whatsapp_consent",
            "email_consent",
            "attributes",
            "lists",
        ]

    def clean(self):
        cleaned = super().clean()
        # One field at a time, so the valid ones are normalised (and checked for uniqueness) despite the others.
        for name in [name for name in self.Meta.fields if name != "lists" and name in cleaned]:
            try:
                cleaned.update(contact_fields_clean({name: cleaned[name]}))
            except ValidationError as error:
                _add_errors(self, error)
        return cleaned


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "description", "contact_list", "match", "filters"]
        widgets = {"filters": forms.Textarea(attrs={**_CODE, "rows": 8})}
        help_texts = {
            "filters": 'A JSON list, like [{"field": "language", "op": "eq", "value": "fr"}, '
            '{"field": "attributes.plan", "op": "in", "value": ["gold", "silver"]}, '
            '{"field": "sms_consent", "op": "eq", "value": true}]. Fields: name, phone, email, language, '
            "time_zone, sms_consent, whatsapp_consent, email_consent, list, attributes.<name>. Operators: eq, ne, "
            "in, not_in, contains, startswith, set, not_set (text, case-insensitive); eq (consents); in, not_in "
            "(list).",
        }

    def clean_filters(self):
        return segment_filters_clean(self.cleaned_data.get("filters"))


class ContactImportForm(ImportForm):
    list_name = forms.CharField(
        label="Add to list",
        required=False,
        max_length=200,
        help_text="Every imported contact joins this list (created if it does not exist). Leave empty for none.",
    )


class ContactConfirmImportForm(ConfirmImportForm):
    list_name = forms.CharField(required=False, widget=forms.HiddenInput())
