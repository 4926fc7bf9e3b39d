from django import forms
from django.core.exceptions import ValidationError

from content.models import Channel, MessageTemplate

from .addresses import normalize_recipient
from .models import Category, Priority, Suppression
from .services.messages import SUPPORTED_CHANNELS


class ComposeForm(forms.Form):
    """The admin's compose page: send one message now or at a chosen time."""

    channel = forms.ChoiceField(choices=[(c, Channel(c).label) for c in SUPPORTED_CHANNELS])
    to = forms.CharField(
        max_length=320, help_text="E.164 phone number (+14155550100), email address, or Messenger PSID."
    )
    category = forms.ChoiceField(
        choices=Category.choices,
        initial=Category.MARKETING,
        required=False,
        help_text="Transactional messages (codes, receipts) still reach people who opted out of marketing.",
    )
    sender = forms.CharField(
        max_length=320, required=False, help_text="Optional: another number, Messaging Service SID or address."
    )
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.all(), required=False, help_text="Optional: render a template instead."
    )
    context = forms.JSONField(required=False, initial=dict, help_text='Template variables as JSON: {"name": "Ada"}')
    subject = forms.CharField(max_length=255, required=False, help_text="Email only.")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    html_body = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False, label="HTML body")
    send_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Leave empty to send now. Times are in the server's time zone.",
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.DEFAULT)
    valid_for = forms.IntegerField(
        required=False,
        min_value=1,
        label="Too late after (seconds)",
        help_text="Optional: if it cannot go out within this many seconds of its send time, it fails instead "
        "of arriving late (e.g. 600 for a one-time code).",
    )
    media_urls = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Media URLs",
        help_text="SMS (MMS) and WhatsApp: one public URL per line.",
    )

    def clean_category(self):
        return self.cleaned_data.get("category") or Category.MARKETING

    def clean_media_urls(self):
        return [line.strip() for line in (self.cleaned_data.get("media_urls") or "").splitlines() if line.strip()]

    def clean_context(self):
        value = self.cleaned_data.get("context")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Give the variables as a JSON object, like {"name": "Ada"}.')
        return value


class SuppressionForm(forms.ModelForm):
    """Adding an address by hand: normalised like a recipient, so it matches the messages it should stop."""

    class Meta:
        model = Suppression
        fields = ["channel", "address", "reason", "detail"]

    def clean(self):
        cleaned = super().clean()
        channel, address = cleaned.get("channel"), cleaned.get("address")
        if channel and address:
            try:
                cleaned["address"] = normalize_recipient(channel, address)
            except ValidationError as error:
                self.add_error("address", error)
        return cleaned
