"""The dashboard's alerts panel: what fires now, since when, and what to do."""

from datetime import timedelta

from django import template
from django.conf import settings
from django.utils import timezone

from console.services.alerts import alerts_firing, alerts_last_checked

register = template.Library()

# Checks are this many intervals late before the panel says nobody is checking.
LATE_AFTER_INTERVALS = 3


@register.simple_tag
def alerts_panel() -> dict:
    checked_at = alerts_last_checked()
    late_after = timedelta(seconds=settings.ALERT_CHECK_INTERVAL * LATE_AFTER_INTERVALS)
    return {
        "firing": alerts_firing(),
        "checked_at": checked_at,
        "unchecked": checked_at is None or timezone.now() - checked_at > late_after,
    }
