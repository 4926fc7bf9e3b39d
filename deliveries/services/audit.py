"""The audit trail: who (a staff member, an API key, a command) did what to which object, when and from where.

Entry points call `audit_record` once they have done something a person may later ask about: an admin action
or page, an API view, a management command. Services stay unaware of it, because only the entry point knows the
actor and the request. To keep the send path and the API's hot path free of extra writes, creation is recorded
where a person or a batch does it (the compose page, an API batch, send_bulk), not once per message created with
`POST /api/v1/messages/`; those messages carry their API key already. What providers report is recorded only
when it lifts a suppression (a START reply, a resubscribe), the direction a forged report would want; an
opt-out or a bounce is not, since the suppression entry itself names its source and message.
"""

from __future__ import annotations

import getpass
import ipaddress
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from messaging_project.client_address import client_ip_address

from ..models import ApiKey, AuditEntry

Action = AuditEntry.Action
REPR_LENGTH = AuditEntry._meta.get_field("target_repr").max_length
ACTOR_LENGTH = AuditEntry._meta.get_field("actor").max_length


def request_client_address(request: HttpRequest | None) -> str | None:
    """The address the request came from, as login lockouts see it: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT
    proxies the address the outermost one saw (messaging_project.client_address)."""
    if request is None:
        return None
    try:
        return str(ipaddress.ip_address(client_ip_address(request)))
    except ValueError:  # a server on a Unix socket may pass "" or the socket's path: not an address to store
        return None


def command_actor(name: str) -> str:
    """How a management command appears as the actor: its name and the operating-system user who ran it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container without a passwd entry)
        return f"manage.py {name}"
    return f"manage.py {name} (run by {user})"


def _actor_of(actor: Any, request: HttpRequest | None) -> Any:
    if actor is not None or request is None:
        return actor
    # DRF's request: user and auth are both the ApiKey; Django's: the session's user.
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return auth
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _actor_fields(actor: Any) -> dict[str, Any]:
    """The entry's actor columns for a user, an API key, or a description (a command) given as text."""
    if isinstance(actor, ApiKey):
        return {"api_key_id": actor.pk, "actor": f"API key {actor.name} ({actor.prefix})"[:ACTOR_LENGTH]}
    if isinstance(actor, AbstractBaseUser):
        return {"user": actor, "actor": actor.get_username()[:ACTOR_LENGTH]}
    return {"actor": (str(actor) if actor else "unknown")[:ACTOR_LENGTH]}


def _target_fields(target: models.Model | None) -> dict[str, str]:
    if target is None:
        return {}
    return {
        "target_type": target._meta.label_lower,
        "target_id": "" if target.pk is None else str(target.pk),
        "target_repr": str(target)[:REPR_LENGTH],
    }


def audit_record(
    *,
    action: str,
    target: models.Model | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record one action on one object. `actor` is a user, an ApiKey or a text (a command's name); without it,
    the request's API key or logged-in user. The request also gives the address it came from."""
    return AuditEntry.objects.create(**_entry_fields(action, target, actor, request, details))


def audit_record_each(
    *,
    action: str,
    targets: Iterable[models.Model],
    actor: Any = None,
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """`audit_record` for each of several objects one admin action changed, in one INSERT; returns how many."""
    entries = [AuditEntry(**_entry_fields(action, target, actor, request, details)) for target in targets]
    AuditEntry.objects.bulk_create(entries)
    return len(entries)


def _entry_fields(
    action: str,
    target: models.Model | None,
    actor: Any,
    request: HttpRequest | None,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "action": Action(action),
        **_actor_fields(_actor_of(actor, request)),
        **_target_fields(target),
        "ip_address": request_client_address(request),
        "details": details or {},
    }


def audit_expired_before() -> datetime:
    return timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)


def audit_entries_prune(*, limit: int = 5000) -> int:
    """Delete up to `limit` entries older than AUDIT_RETENTION_DAYS, oldest first; returns how many. The
    dispatcher calls it on every reconcile pass, so a backlog goes in chunks that never hold a long lock."""
    ids = list(
        AuditEntry.objects.filter(created_at__lt=audit_expired_before())
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0
    AuditEntry.objects.filter(pk__in=ids).delete()
    return len(ids)
