"""The rollups (counts per hour and per minute) and where the incremental job has got to in the tables it reads."""

from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce


class HourlyRollup(models.Model):
    """How many times `metric` happened in one hour (UTC) on one channel, for one campaign or none. All time."""

    hour = models.DateTimeField()
    channel = models.CharField(max_length=20)
    # The campaign's id without a foreign key: analytics sits below campaigns, and a deleted campaign's figures stay.
    campaign_id = models.BigIntegerField(null=True, blank=True)
    metric = models.CharField(max_length=20)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # No campaign counts as campaign 0 here: NULLs are all different to a plain unique constraint.
            models.UniqueConstraint(
                F("hour"), F("channel"), Coalesce("campaign_id", Value(0)), F("metric"), name="hourly_rollup_key"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign_id"], name="hourly_rollup_campaign_id"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.channel} campaign {self.campaign_id} {self.metric}: {self.count}"


class MinuteRollup(models.Model):
    """How many times `metric` happened in one minute on one channel, to messages of one priority (the queue they
    go through; "" for what is no message's, a STOP reply), kept ANALYTICS_MINUTE_RETENTION_HOURS: the "now"
    figures, per channel and per queue. Besides the metrics, the schedule lag's histogram buckets
    (analytics.metrics.LAG_BUCKET_METRICS)."""

    minute = models.DateTimeField()
    channel = models.CharField(max_length=20)
    priority = models.CharField(max_length=10, blank=True, default="")
    metric = models.CharField(max_length=20)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "channel", "priority", "metric"], name="minute_rollup_key"),
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.channel} {self.priority or '-'} {self.metric}: {self.count}"


class RollupCursor(models.Model):
    """How far the rollup job has read one table: every row with an id up to `watermark` is counted, except the
    ids in RollupGap (missing when read: their transaction had not committed yet, or rolled back)."""

    name = models.CharField(max_length=40, primary_key=True)
    watermark = models.BigIntegerField(default=0)
    ran_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} up to {self.watermark}"


class RollupGap(models.Model):
    """An id below a cursor's watermark that was missing when the job read past it. Looked for on every run and
    counted when it appears; forgotten after ANALYTICS_GAP_MAX_AGE (its transaction rolled back)."""

    cursor = models.ForeignKey(RollupCursor, on_delete=models.CASCADE, related_name="gaps")
    row_id = models.BigIntegerField()
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cursor", "row_id"], name="rollup_gap_key")]

    def __str__(self) -> str:
        return f"{self.cursor_id} gap {self.row_id}"
