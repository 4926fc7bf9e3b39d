"""Alerts: run the rules, turn each change of what they see into one notice, and send the notices.

Run every ALERT_CHECK_INTERVAL seconds by each dispatcher (DISPATCHER_PERIODIC_TASKS) and by `manage.py
check_alerts`. An alert fires once when its rule starts seeing trouble and clears once when it stops: the change
is a conditional UPDATE of its row (console.models.Alert), so of several dispatchers checking at once exactly one
makes it and records the notice, and a restart remembers what was firing. The rules are in alert_rules.py, the
sending in alert_notices.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from ..models import Alert, AlertEvent, AlertEventKind, AlertState
from .alert_notices import notice_text, notices_send
from .alert_rules import RULES, Finding

logger = logging.getLogger("console.alerts")


@dataclass(frozen=True)
class AlertLine:
    """One alert as this check left it, for `check_alerts` to print: `changed` is "fired" or "cleared" when this
    check made that change; `error` says why its rule could not be read (the alert then keeps its state)."""

    key: str
    state: str
    detail: str
    changed: str = ""
    error: str = ""

    def __str__(self) -> str:
        if self.error:
            return f"{self.key}: unknown (could not check: {self.error})"
        return f"{self.key}: {self.state}{f' (just {self.changed})' if self.changed else ''}: {self.detail}"


def alerts_check(now: datetime | None = None) -> list[AlertLine]:
    """Run every rule, record each alert's change, send the notices due (new ones, and those a destination
    refused before). Only a DatabaseError escapes: the state lives in the database; a rule or a destination that
    fails is logged and left for the next check, so the dispatcher's loop never breaks on it."""
    now = timezone.now() if now is None else now
    lines = []
    for rule in RULES:
        try:
            findings = rule(now)
        except DatabaseError:
            raise
        except Exception as error:  # a rule's figure unreadable (Redis down): its alert keeps its state
            logger.warning("Alert rule %s could not read its figure: %s", rule.__name__, error)
            lines.append(AlertLine(key=rule.__name__, state="unknown", detail="", error=str(error) or repr(error)))
            continue
        lines.extend(alert_apply(finding, now=now) for finding in findings)
    notices_send()
    return lines


def alert_apply(finding: Finding, *, now: datetime) -> AlertLine:
    """Move the alert to what `finding` sees, if it is not there yet; a firing alert clears only once it has fired
    ALERT_CLEAR_AFTER_SECONDS, so a figure hovering at its threshold cannot send a storm of notices."""
    alert, _ = Alert.objects.get_or_create(key=finding.key, defaults={"title": finding.title})
    target = AlertState.FIRING if finding.firing else AlertState.CLEAR
    figures = {"title": finding.title, "detail": finding.detail, "next_step": finding.next_step, "checked_at": now}
    with transaction.atomic():
        changing = Alert.objects.filter(pk=alert.pk).exclude(state=target)
        if target == AlertState.CLEAR:
            changing = changing.filter(since__lte=now - timedelta(seconds=settings.ALERT_CLEAR_AFTER_SECONDS))
        if changing.update(state=target, since=now, **figures):
            kind = AlertEventKind.FIRED if finding.firing else AlertEventKind.CLEARED
            AlertEvent.objects.create(alert_id=alert.pk, kind=kind, at=now, text=notice_text(finding, kind=kind))
            logger.warning("Alert %s %s: %s", finding.key, kind, finding.detail)
            return AlertLine(key=finding.key, state=target, detail=finding.detail, changed=kind)
    # No change: the figure is refreshed where it agrees with the state, the time of the check everywhere.
    if Alert.objects.filter(pk=alert.pk, state=target).update(**figures):
        return AlertLine(key=finding.key, state=target, detail=finding.detail)
    # Only a clear held back by ALERT_CLEAR_AFTER_SECONDS gets here: it is still firing.
    Alert.objects.filter(pk=alert.pk).update(checked_at=now)
    return AlertLine(
        key=finding.key,
        state=AlertState.FIRING,
        detail=f"{finding.detail} (clears once it has fired {settings.ALERT_CLEAR_AFTER_SECONDS:g} s)",
    )


def alerts_firing() -> list[Alert]:
    """The alerts firing now, the longest-firing first (the dashboard's banner)."""
    return list(Alert.objects.filter(state=AlertState.FIRING).order_by("since", "key"))


def alerts_last_checked() -> datetime | None:
    """When the alerts were last checked by anyone: a dashboard showing "no alerts" must say whether anyone looks."""
    return Alert.objects.order_by("-checked_at").values_list("checked_at", flat=True).first()
