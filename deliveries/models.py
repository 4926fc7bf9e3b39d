from django.conf import settings
from django.db import models
from django.utils import timezone

from campaigns.models import Channel


class Priority(models.TextChoices):
    HIGH = "high", "High"
    DEFAULT = "default", "Default"
    LOW = "low", "Low"


class Status(models.TextChoices):
    """Every change goes through deliveries.state.transition(); see TRANSITIONS there."""

    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Held back while its campaign is paused; workers only claim `queued` rows, so a held message is never sent.
    PAUSED = "paused", "Paused"


class ApiKey(models.Model):
    """An API client. Only a SHA-256 of the key is stored; the key itself is shown once at creation."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=12, unique=True, help_text="Public part of the key, for lookup.")
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    # DRF treats request.user as authenticated when this is true.
    is_authenticated = True


class Message(models.Model):
    """One message to one recipient on one channel: the source of truth for its delivery."""

    Channel = Channel
    Status = Status
    Priority = Priority

    channel = models.CharField(max_length=20, choices=Channel.choices)
    recipient = models.CharField(max_length=320, help_text="E.164 phone number or email address.")
    sender = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    template = models.ForeignKey(
        "campaigns.MessageTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    context = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.DEFAULT)
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    batch = models.ForeignKey(
        "campaigns.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    # Set by bulk senders (send_bulk: "<key>:<line>") so that running them again never creates the row twice.
    dedupe_key = models.CharField(max_length=255, null=True, blank=True, unique=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    send_at = models.DateTimeField(null=True, blank=True, help_text="When to send; empty means now.")
    provider = models.CharField(max_length=50, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error_code = models.CharField(max_length=50, blank=True)
    last_error_message = models.TextField(blank=True)

    # Pipeline bookkeeping: the RQ job meant to send this row, and the claim of the worker sending it.
    job_id = models.CharField(max_length=64, blank=True, db_index=True)
    claim_token = models.UUIDField(null=True, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("cancel_message", "Can cancel messages"), ("retry_message", "Can retry failed messages")]
        indexes = [
            models.Index(fields=["status", "send_at"], name="message_status_send_at"),
            models.Index(fields=["status", "queued_at"], name="message_status_queued_at"),
            models.Index(fields=["status", "lease_expires_at"], name="message_status_lease"),
            models.Index(fields=["campaign", "status"], name="message_campaign_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel} to {self.recipient} ({self.status})"


class MessageEvent(models.Model):
    """One line of a message's timeline: a status change, a provider response or an error."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        PROVIDER = "provider", "Provider response"
        ERROR = "error", "Error"
        NOTE = "note", "Note"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.STATUS)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    code = models.CharField(max_length=50, blank=True)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} {self.from_status}→{self.to_status}"
