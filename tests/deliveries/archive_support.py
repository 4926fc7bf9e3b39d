"""Old messages made fast for the archiving tests (rows written as given, events included), and what the tests
compare before and after: every row of the hot tables, and the figures the dashboard and campaign pages show."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connection, models
from django.utils import timezone

from analytics import selectors as analytics
from campaigns import selectors as campaign_figures
from campaigns.models import Campaign
from deliveries.archiving.rows import rows_insert_exact
from deliveries.db.row_inserts import ids_reserve
from deliveries.models import Batch, Message, MessageEvent, Status
from deliveries.selectors import batch_status_counts

# Each message's status and error code, in turn; a sent message gets sent and a receipt event, others one event.
OUTCOMES = [
    (Status.DELIVERED, ""),
    (Status.DELIVERED, ""),
    (Status.UNDELIVERED, "30006"),
    (Status.FAILED, "21211"),
    (Status.CANCELLED, ""),
    (Status.SUPPRESSED, ""),
    (Status.DELIVERED, ""),
    (Status.FAILED, "30003"),
]
BODIES = ["Hello there", "Ünïcödé body that is UCS-2 " * 3, "A long GSM body " * 12]


def _ids(model: type[Any], count: int) -> list[int]:
    if connection.vendor == "postgresql":
        return ids_reserve(model, count)
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return list(range(last + 1, last + 1 + count))


def _row(instance: Any) -> dict[str, Any]:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def seed_old_messages(
    count: int,
    *,
    days_old: float = 100,
    campaign: Campaign | None = None,
    batch: Batch | None = None,
    chains: int = 0,
) -> list[int]:
    """`count` finished messages created about `days_old` days ago (spread over up to three days before), with
    their events; the first `chains` pairs are a parent and a message depending on it. Returns their ids.

    The last is made at 23:00 UTC of the day `days_old` days ago, not at this hour minus `days_old`: so a spread
    shorter than 23 hours is one day's file whatever the time the tests run (just after midnight, a few minutes of
    messages would otherwise cross into a second day)."""
    ids = _ids(Message, count)
    step = min(257.3, 3 * 86400 / count)  # seconds between two messages: at most three days in all
    day = (timezone.now() - timedelta(days=days_old)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = day + timedelta(hours=23) - timedelta(seconds=step * count)
    template_message = _row(Message(channel="sms", recipient="+14155550100"))
    template_event = _row(MessageEvent(message_id=0))
    messages, events = [], []
    for number, pk in enumerate(ids):
        status, code = OUTCOMES[number % len(OUTCOMES)]
        created = start + timedelta(seconds=number * step, microseconds=number % 997)
        row = {
            **template_message,
            "id": pk,
            "recipient": f"+1415{number:07d}",
            "body": BODIES[number % len(BODIES)],
            "status": status,
            "last_error_code": code,
            "last_error_message": f"error {code} for {number}" if code else "",
            "campaign_id": campaign.pk if campaign and number % 3 == 0 else None,
            "batch_id": batch.pk if batch and number % 5 == 1 else None,
            "metadata": {"n": number, "nested": {"list": [1, 2.5, None, "ü"]}},
            "context": {"name": f"Person {number}"} if number % 2 else {},
            "depends_on_delay": timedelta(minutes=5) if number % 11 == 0 else None,
            "created_at": created,
            "updated_at": created + timedelta(minutes=3),
            "sent_at": created + timedelta(seconds=2) if status in (Status.DELIVERED, Status.UNDELIVERED) else None,
            "delivered_at": created + timedelta(seconds=9) if status == Status.DELIVERED else None,
        }
        if number < 2 * chains and number % 2 == 1:
            row["depends_on_id"] = ids[number - 1]
            row["depends_on_condition"] = "delivered"
        messages.append(row)
        at = created + timedelta(seconds=1)
        events.append({**template_event, "message_id": pk, "to_status": "queued", "created_at": at})
        if row["sent_at"]:
            events.append({**template_event, "message_id": pk, "to_status": "sent", "created_at": row["sent_at"]})
        final_at = row["delivered_at"] or created + timedelta(seconds=10)
        events.append({**template_event, "message_id": pk, "to_status": status, "code": code, "created_at": final_at})
    # Dependent messages are made after their parent: the parent's id is the lower one, as the API makes them.
    rows_insert_exact(Message, messages)
    for event, pk in zip(events, _ids(MessageEvent, len(events)), strict=True):
        event["id"] = pk
    rows_insert_exact(MessageEvent, events)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the planner's statistics, as autovacuum would keep them
            cursor.execute("ANALYZE deliveries_message, deliveries_messageevent")
    return ids


def _attnames(model: type[Any]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def table_dump() -> dict[str, Any]:
    """Every row of the hot tables, every column, in id order: on PostgreSQL the SHA-256 and size of the table's
    COPY text (the server's own rendering of every value; reading 350,000 rows through the ORM was most of the
    100,000-message test's time), elsewhere the rows themselves."""
    dump: dict[str, Any] = {}
    for model in (Message, MessageEvent):
        if connection.vendor != "postgresql":
            dump[model.__name__] = list(model.objects.order_by("pk").values_list(*_attnames(model)))
            continue
        digest, size = hashlib.sha256(), 0
        with connection.cursor() as cursor:
            copy_sql = f"COPY (SELECT * FROM {model._meta.db_table} ORDER BY id) TO STDOUT"  # noqa: S608
            with cursor.cursor.copy(copy_sql) as copy:
                for block in copy:
                    digest.update(block)
                    size += len(block)
        dump[model.__name__] = (digest.hexdigest(), size, model.objects.count())
    return dump


def figures(campaign: Campaign, batch: Batch | None = None) -> dict[str, Any]:
    """What the dashboard (analytics' selectors) and the campaign and batch pages show."""
    # Fixed ends (tomorrow's midnight), so the figures read at different moments of a test cover the same range.
    now = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    progress = campaign_figures.campaign_progress(campaign=campaign)
    return {
        "totals": analytics.totals(),
        "trends": analytics.trends(now - timedelta(days=200), now, bucket="day"),
        "trends_sms": analytics.trends(now - timedelta(days=200), now, bucket="hour", channel="sms")["totals"],
        "funnel": analytics.campaign_funnel(campaign.pk),
        "since_2000": analytics.trends(start, now, bucket="day")["totals"],
        "progress": progress,
        "failures": campaign_figures.campaign_failures(campaign=campaign),
        "segments": campaign_figures.campaign_segments(campaign=campaign, sent_count=progress["sent"]),
        "segments_counted": campaign_figures.campaign_segments(campaign=campaign),
        "engagement": campaign_figures.campaign_engagement(campaign_id=campaign.pk),
        "series": campaign_figures.campaign_progress_series(campaign=campaign),
        "batch": batch_status_counts(batch=batch) if batch else None,
    }


def archived_ids(directory: Path) -> list[int]:
    """The message ids in every archive file of `directory`, as often as they occur."""
    found = []
    for path in sorted(directory.glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            found += [line["pk"] for line in map(json.loads, handle) if line["model"] == "deliveries.message"]
    return found


def seed_old_messages_on_server(
    count: int, *, days_old: float = 100, campaign: Campaign | None = None, batch: Batch | None = None
) -> list[int]:
    """seed_old_messages made by PostgreSQL itself (INSERT ... SELECT over generate_series): the same mix of
    statuses, errors, bodies, links and events, for the tests of many messages, where building the rows here was
    most of the test's time. Returns their ids."""
    sequence = "pg_get_serial_sequence('deliveries_message', 'id')"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval({sequence})")
        first = cursor.fetchone()[0]
        cursor.execute(f"SELECT setval({sequence}, %s)", [first + count])
    step = min(257.3, 3 * 86400 / count)
    start = timezone.now() - timedelta(days=days_old) - timedelta(seconds=step * count)
    statuses = "ARRAY[" + ", ".join(f"'{status}'" for status, _code in OUTCOMES) + "]"
    codes = "ARRAY[" + ", ".join(f"'{code}'" for _status, code in OUTCOMES) + "]"
    n = "(g % 8 + 1)"
    created = "(%(start)s::timestamptz + make_interval(secs => g * %(step)s) + make_interval(secs => (g % 997) / 1e6))"
    varied = {
        "id": f"{first} + g",
        "recipient": "'+1415' || lpad(g::text, 7, '0')",
        "body": "(ARRAY[%(b0)s, %(b1)s, %(b2)s])[g % 3 + 1]",
        "status": f"({statuses})[{n}]",
        "last_error_code": f"({codes})[{n}]",
        "last_error_message": f"CASE WHEN ({codes})[{n}] = '' THEN '' ELSE 'error ' || ({codes})[{n}] || ' for ' || g "
        "END",
        "campaign_id": "CASE WHEN g % 3 = 0 THEN %(campaign)s::bigint END",
        "batch_id": "CASE WHEN g % 5 = 1 THEN %(batch)s::bigint END",
        "metadata": """jsonb_build_object('n', g, 'nested', '{"list": [1, 2.5, null, "ü"]}'::jsonb)""",
        "context": "CASE WHEN g % 2 = 1 THEN jsonb_build_object('name', 'Person ' || g) ELSE '{}'::jsonb END",
        "depends_on_delay": "CASE WHEN g % 11 = 0 THEN interval '5 minutes' END",
        "created_at": created,
        "updated_at": f"{created} + interval '3 minutes'",
        "sent_at": f"CASE WHEN g % 8 IN (0, 1, 2, 6) THEN {created} + interval '2 seconds' END",
        "delivered_at": f"CASE WHEN g % 8 IN (0, 1, 6) THEN {created} + interval '9 seconds' END",
    }
    defaults = _row(Message(channel="sms"))
    columns, values = [], []
    params: dict[str, Any] = {
        "start": start,
        "step": step,
        "campaign": campaign.pk if campaign else None,
        "batch": batch.pk if batch else None,
        **{f"b{i}": body for i, body in enumerate(BODIES)},
    }
    for field in Message._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in varied:
            values.append(varied[field.attname])
            continue
        value = defaults[field.attname]
        params[field.attname] = json.dumps(value) if isinstance(field, models.JSONField) else value
        values.append(f"%({field.attname})s" + ("::jsonb" if isinstance(field, models.JSONField) else ""))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO deliveries_message ({', '.join(columns)}) "  # noqa: S608
            # A literal % is %% beside parameters.
            f"SELECT {', '.join(values).replace(' % ', ' %% ')} FROM generate_series(1, {count}) AS g",
            params,
        )
        event = "INSERT INTO deliveries_messageevent (message_id, kind, from_status, to_status, code, detail, data, "
        event += "dedupe_key, created_at) SELECT id, 'status', '', {to}, {code}, '', '{{}}', '', {at} FROM "
        event += f"deliveries_message WHERE id > {first} AND id <= {first + count}"
        cursor.execute(event.format(to="'queued'", code="''", at="created_at + interval '1 second'"))
        cursor.execute(event.format(to="'sent'", code="''", at="sent_at") + " AND sent_at IS NOT NULL")
        at = "COALESCE(delivered_at, created_at + interval '10 seconds')"
        cursor.execute(event.format(to="status", code="last_error_code", at=at))
        cursor.execute("ANALYZE deliveries_message, deliveries_messageevent")
    return list(range(first + 1, first + count + 1))
