"""The audit trail's table. Imported by deliveries.models, so it is deliveries' model; only
deliveries.services.audit writes it."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """Who did what to which object, when and from where: a staff member in the admin, an API key, a command.

    Written by deliveries.services.audit.audit_record only, never changed; the dispatcher deletes entries older
    than AUDIT_RETENTION_DAYS. The API key is kept as id and label rather than a foreign key, so an entry outlives
    the key and says which key it was.
    """

    class Action(models.TextChoices):
        MESSAGE_CREATED = "message_created", "Message created"
        BATCH_CREATED = "batch_created", "Batch of messages created"
        MESSAGE_CANCELLED = "message_cancelled", "Message cancelled"
        MESSAGE_RETRIED = "message_retried", "Message retried"
        MESSAGE_REVIEWED = "message_reviewed", "Message needing review settled"
        CAMPAIGN_LAUNCHED = "campaign_launched", "Campaign launched"
        CAMPAIGN_PAUSED = "campaign_paused", "Campaign paused"
        CAMPAIGN_RESUMED = "campaign_resumed", "Campaign resumed"
        CAMPAIGN_CANCELLED = "campaign_cancelled", "Campaign cancelled"
        SUPPRESSION_ADDED = "suppression_added", "Suppression added"
        SUPPRESSION_LIFTED = "suppression_lifted", "Suppression lifted"
        KEY_CREATED = "key_created", "API key created"
        KEY_REVOKED = "key_revoked", "API key revoked"
        TEMPLATE_CHANGED = "template_changed", "Template created, changed or deleted"
        MESSAGES_EXPORTED = "messages_exported", "Messages exported (CSV)"
        PERSON_ERASED = "person_erased", "A person's data erased (GDPR)"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)  # the retention sweep's index
    action = models.CharField(max_length=40, choices=Action.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key_id = models.BigIntegerField(null=True, blank=True, help_text="The API key's id, if a key acted.")
    actor = models.CharField(max_length=200, help_text="Who acted, in words: a username, a key, a command.")
    target_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of what was acted on.")
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(
        null=True, blank=True, help_text="Where the request came from (behind proxies: see TRUSTED_PROXY_COUNT)."
    )
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor}: {self.get_action_display()} {self.target_repr}"
