from datetime import UTC

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from content.models import Channel, MessageTemplate

from .addresses import normalize_recipient
from .models import ApiKey, Category, Priority, Purpose, Suppression
from .services.api_keys import ApiKeyInvalid, api_key_countries_validate
from .services.messages import SUPPORTED_CHANNELS

# The compose page's groups of fields: a title, the channels the group applies to (None: every channel) and its
# fields, body first. Without JavaScript every group shows under its title; compose_fields.js shows only those of
# the chosen channel. The server refuses a filled field of another channel either way.
COMPOSE_GROUPS: list[tuple[str, tuple[str, ...] | None, tuple[str, ...]]] = [
    ("Message", None, ("channel", "to", "body")),
    ("Email only", ("email",), ("subject", "html_body")),
    ("SMS and WhatsApp only", ("sms", "whatsapp"), ("media_urls",)),
    ("Or render a template instead of the body", None, ("template", "context")),
    ("When and how", None, ("send_at", "priority", "category", "purpose", "sender", "valid_for")),
]
# The fields of a group that applies to some channels only, by field name.
CHANNEL_ONLY_FIELDS = {name: channels for _title, channels, names in COMPOSE_GROUPS if channels for name in names}
CHANNEL_ONLY_NOUNS = {"subject": "subject", "html_body": "HTML part", "media_urls": "media"}


class UtcDateTimeField(forms.DateTimeField):
    """A date and time read as UTC whatever TIME_ZONE is, so the page can say which zone it means."""

    def to_python(self, value):
        with timezone.override(UTC):
            return super().to_python(value)


class TemplateSelect(forms.Select):
    """The template choice, each option marked with its template's channel for compose_fields.js to filter."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-channel"] = instance.channel
        return option


class ComposeForm(forms.Form):
    """The admin's compose page: send one message now or at a chosen time."""

    channel = forms.ChoiceField(choices=[(c, Channel(c).label) for c in SUPPORTED_CHANNELS])
    to = forms.CharField(
        max_length=320, help_text="E.164 phone number (+14155550100), email address, or Messenger PSID."
    )
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text="The text. For an email, its plain-text part (give the HTML part below as well if you like).",
    )
    subject = forms.CharField(max_length=255, required=False)
    html_body = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False, label="HTML body")
    media_urls = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Media URLs",
        help_text="One public URL per line (an image, a PDF...).",
    )
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.all(),
        required=False,
        widget=TemplateSelect,
        help_text="Renders the template's text instead of the body and subject above.",
    )
    context = forms.JSONField(
        required=False,
        initial=dict,
        help_text='The template\'s variables as JSON: {"first_name": "Ada"}. A contact\'s fields are not filled in '
        "here: give every variable the template needs.",
    )
    send_at = UtcDateTimeField(
        required=False,
        label="Send at (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"),
        help_text="Leave empty to send now. In UTC, to the second.",
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.DEFAULT)
    category = forms.ChoiceField(
        choices=Category.choices,
        initial=Category.MARKETING,
        required=False,
        help_text="Transactional messages (codes, receipts) still reach people who opted out of marketing.",
    )
    purpose = forms.ChoiceField(
        choices=[("", "---------"), *Purpose.choices],
        required=False,
        help_text="A one-time code (transactional only) is held for review past the strictest velocity limits.",
    )
    sender = forms.CharField(
        max_length=320, required=False, help_text="Optional: another number, Messaging Service SID or address."
    )
    valid_for = forms.IntegerField(
        required=False,
        min_value=1,
        label="Too late after (seconds)",
        help_text="Optional: if it cannot go out within this many seconds of its send time, it fails instead "
        "of arriving late (e.g. 600 for a one-time code).",
    )

    def groups(self) -> list[dict]:
        """The fields in COMPOSE_GROUPS' order, for the template."""
        return [
            {"title": title, "channels": " ".join(channels or ()), "fields": [self[name] for name in names]}
            for title, channels, names in COMPOSE_GROUPS
        ]

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

    def clean(self):
        """Refuse what the chosen channel cannot carry, rather than drop it without a word."""
        cleaned = super().clean()
        channel = cleaned.get("channel")
        if channel:
            label = Channel(channel).label
            for name, channels in CHANNEL_ONLY_FIELDS.items():
                if cleaned.get(name) and channel not in channels:
                    self.add_error(name, f"{label} messages have no {CHANNEL_ONLY_NOUNS[name]}: leave it empty.")
        return cleaned


class SuppressionForm(forms.ModelForm):
    """Adding an address by hand: normalised like a recipient, so it matches the messages it should stop."""

    class Meta:
        model = Suppression
        fields = ["channel", "address", "reason", "detail"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "address" in self.fields:  # the model allows none only for an erased person's hashed entry
            self.fields["address"].required = True

    def clean(self):
        cleaned = super().clean()
        channel, address = cleaned.get("channel"), cleaned.get("address")
        if channel and address:
            try:
                cleaned["address"] = normalize_recipient(channel, address)
            except ValidationError as error:
                self.add_error("address", error)
        return cleaned


class ApiKeyCountriesForm(forms.ModelForm):
    """The one thing of a key edited after its creation in the admin: the countries it may send to, which can
    only narrow SMS_ALLOWED_COUNTRIES and WHATSAPP_ALLOWED_COUNTRIES (api_key_countries_validate refuses more)."""

    allowed_countries = forms.CharField(
        required=False,
        label="Allowed countries",
        help_text="ISO codes separated by commas (GB, US) of the countries this key may send SMS and WhatsApp to; "
        "empty: every country the global lists allow.",
    )

    class Meta:
        model = ApiKey
        fields = ["allowed_countries"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["allowed_countries"] = ", ".join(self.instance.allowed_countries or [])

    def clean_allowed_countries(self) -> list[str]:
        try:
            return api_key_countries_validate(self.cleaned_data["allowed_countries"].split(","))
        except ApiKeyInvalid as error:
            raise ValidationError(str(error)) from None
