from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    WHATSAPP = "whatsapp", "WhatsApp"
    MESSENGER = "messenger", "Messenger"


class MessageTemplate(models.Model):
    """Reusable content rendered with Django's template language from a plain dict context.

    Every variable the content uses must be declared in `variables` (name -> default, null for "required");
    campaigns.services.templates validates that on save and fills defaults at render. Translations hold the
    same content in other languages; this row is the version in `language`, used when no translation fits.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    language = models.CharField(
        max_length=15, default="en", help_text="Language of this version, used when no translation fits."
    )
    subject = models.CharField(max_length=255, blank=True, help_text="Email only.")
    body = models.TextField(
        blank=True,
        help_text="SMS or WhatsApp text; for an email, the text part (derived from the HTML when left empty).",
    )
    html_body = models.TextField(blank=True, help_text="Email only: the HTML part.")
    variables = models.JSONField(
        default=dict,
        blank=True,
        help_text='Variables the template may use, with their defaults: {"first_name": null, "shop": "Tidings"}. '
        "null means required: a message missing it fails instead of being sent.",
    )
    sample_context = models.JSONField(
        default=dict, blank=True, help_text='Sample values for the preview: {"first_name": "Ada"}.'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"


class MessageTemplateTranslation(models.Model):
    """The content of a template in another language; the template's channel and variables apply."""

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=15, help_text="Language code, like 'fr' or 'pt-br'.")
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["language"]
        constraints = [
            models.UniqueConstraint(fields=["template", "language"], name="template_translation_unique_language")
        ]

    def __str__(self) -> str:
        return f"{self.template.name} [{self.language}]"


class Campaign(models.Model):
    """A named group of messages. Audiences, schedules and the lifecycle arrive with the campaigns issue."""

    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once, by the dispatcher's sweep, when every message has reached a final state (campaigns.services.completion).
    completed_at = models.DateTimeField(null=True, blank=True)
    summary_sent_at = models.DateTimeField(null=True, blank=True, help_text="When the owner's summary email went.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class ContactList(models.Model):
    """A named set of contacts, filled by hand or by imports (`import_contacts FILE --list NAME`)."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    """Someone Tidings may message. Phone and email are normalised (E.164, lower case) and each unique, so an
    import can find the contact again by either; a blank field means "not known" and never matches."""

    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, like +14155550100.")
    email = models.CharField(max_length=320, blank=True)
    language = models.CharField(
        max_length=15, blank=True, help_text="Picks a template's translation; empty means the template's own language."
    )
    time_zone = models.CharField(max_length=64, blank=True, help_text="IANA name, like Europe/Paris.")
    attributes = models.JSONField(
        default=dict, blank=True, help_text='Custom attributes, usable in templates: {"plan": "gold"}.'
    )
    sms_consent = models.BooleanField("SMS consent", default=False)
    whatsapp_consent = models.BooleanField("WhatsApp consent", default=False)
    email_consent = models.BooleanField("email consent", default=False)
    lists = models.ManyToManyField(ContactList, related_name="contacts", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["phone"],
                condition=~models.Q(phone=""),
                name="contact_unique_phone",
                violation_error_message="Another contact has this phone number.",
            ),
            models.UniqueConstraint(
                fields=["email"],
                condition=~models.Q(email=""),
                name="contact_unique_email",
                violation_error_message="Another contact has this email address.",
            ),
            models.CheckConstraint(
                condition=~models.Q(phone="", email=""),
                name="contact_has_phone_or_email",
                violation_error_message="A contact needs a phone number or an email address.",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.phone or self.email

    def has_consent(self, channel: str) -> bool:
        return bool(getattr(self, f"{channel}_consent", False))


class Segment(models.Model):
    """Contacts chosen by attribute filters, evaluated when used (campaigns.selectors.segment_contacts).

    `filters` is a list of {"field": ..., "op": ..., "value": ...}; see campaigns.segment_filters for the fields
    and operators. `match` says whether a contact must pass all of them or any.
    """

    class Match(models.TextChoices):
        ALL = "all", "All filters"
        ANY = "any", "Any filter"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    contact_list = models.ForeignKey(
        ContactList,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="segments",
        help_text="Only contacts of this list; empty means every contact.",
    )
    match = models.CharField(max_length=3, choices=Match.choices, default=Match.ALL)
    filters = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
