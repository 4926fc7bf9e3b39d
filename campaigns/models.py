from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    WHATSAPP = "whatsapp", "WhatsApp"
    MESSENGER = "messenger", "Messenger"


class MessageTemplate(models.Model):
    """Reusable content rendered with Django's template engine from a plain dict context."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    subject = models.CharField(max_length=255, blank=True, help_text="Email only.")
    body = models.TextField(help_text="Plain text body (SMS text, or the email's text part).")
    html_body = models.TextField(blank=True, help_text="Email only: the HTML part.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"


class Campaign(models.Model):
    """A named group of messages. Audiences, schedules and the lifecycle arrive with the campaigns issue."""

    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name
