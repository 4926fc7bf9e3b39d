from django import forms

from campaigns.models import MessageTemplate

from .models import Priority
from .services.messages import SUPPORTED_CHANNELS


class ComposeForm(forms.Form):
    """The admin's compose page: send one SMS or email now or at a chosen time."""

    channel = forms.ChoiceField(choices=[(c, c.upper() if c == "sms" else c.title()) for c in SUPPORTED_CHANNELS])
    to = forms.CharField(max_length=320, help_text="E.164 phone number (+14155550100) or email address.")
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

    def clean_context(self):
        value = self.cleaned_data.get("context")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Give the variables as a JSON object, like {"name": "Ada"}.')
        return value
