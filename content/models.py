"""What a message says, independent of who gets it: the channels, and templates with their translations.

The bottom of the apps: deliveries and campaigns build on these models, and this app imports neither. The tables
are named `campaigns_*` (db_table): renaming them would only cost a migration rewriting foreign keys.
"""

from django.db import models


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    WHATSAPP = "whatsapp", "WhatsApp"
    MESSENGER = "messenger", "Messenger"


class MessageTemplate(models.Model):
    """Reusable content rendered with Django's template language from a plain dict context.

    Every variable the content uses must be declared in `variables` (name -> default, null for "required"), but
    for the contact fields (content.services.templates.CONTACT_VARIABLES), which may be used undeclared;
    content.services.templates validates that on save and fills defaults at render. Translations hold the
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
        help_text='Variables the template may use, with their defaults: {"plan": null, "shop": "Tidings"}. '
        "null means required: a message missing it fails instead of being sent. A contact's name, first_name, "
        "phone, email, language and time_zone need no declaring.",
    )
    sample_context = models.JSONField(
        default=dict, blank=True, help_text='Sample values for the preview: {"first_name": "Ada", "plan": "gold"}.'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "campaigns_messagetemplate"
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
        db_table = "campaigns_messagetemplatetranslation"
        ordering = ["language"]
        constraints = [
            models.UniqueConstraint(fields=["template", "language"], name="template_translation_unique_language")
        ]

    def __str__(self) -> str:
        return f"{self.template.name} [{self.language}]"
