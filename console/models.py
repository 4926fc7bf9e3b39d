from django.db import models


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
