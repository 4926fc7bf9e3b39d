"""The operations console's own state. Alerts: one row per alert saying whether it fires now, and its history."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AlertState(models.TextChoices):
    CLEAR = "clear", "clear"
    FIRING = "firing", "firing"


class Alert(models.Model):
    """One alert (a rule, or a rule for one channel: "breaker_open:sms") and whether it fires now.

    The database is the source of truth for firing and clearing: a transition is a conditional UPDATE of this row,
    so with several dispatchers checking at once each start and each end is announced once, and a restart
    remembers what was firing (console/services/alerts.py).
    """

    key = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=120)
    state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.CLEAR)
    since = models.DateTimeField(null=True, blank=True, help_text="When it last started firing or cleared.")
    detail = models.TextField(blank=True, help_text="The figure, as last checked.")
    next_step = models.TextField(blank=True, help_text="What to do while it fires.")
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.title} ({self.state})"


class AlertEventKind(models.TextChoices):
    FIRED = "fired", "fired"
    CLEARED = "cleared", "cleared"


class AlertEvent(models.Model):
    """An alert fired or cleared: the notice sent to ADMINS and ALERT_WEBHOOK_URL, and whether each took it.

    A destination that failed is tried again at the next check (`emailed_at` / `posted_at` stay empty), for a
    while (console/services/alert_notices.py)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=AlertEventKind.choices)
    at = models.DateTimeField(default=timezone.now)
    text = models.TextField()
    emailed_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # A check sending this notice holds it until then, so two dispatchers never send it twice.
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["at"], name="alert_event_at")]

    def __str__(self) -> str:
        return f"{self.alert.title} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


class QueueMonitor(models.Model):
    """No table: the holder of the queue monitor's permission (console.view_queue_monitor), which staff need to open
    /admin/console/queues/. Acting there also takes deliveries' cancel_message or retry_message."""

    class Meta:
        managed = False
        verbose_name = verbose_name_plural = "queue monitor"
        default_permissions = ()
        permissions = [("view_queue_monitor", "Can see the queue monitor")]

    def __str__(self) -> str:
        return "Queue monitor"
