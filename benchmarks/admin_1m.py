"""The admin_1m scenario: the admin's pages with 1,000,000 messages and 5,000,000 events in PostgreSQL.

Its own database (BENCH_DB + "_admin_1m", kept between runs: seeding takes minutes), migrated, then seeded with
COPY — messages over 90 days on four channels, in every status, 40 campaigns and 20 bulk batches, five timeline
events a message — and VACUUM ANALYZEd. A run whose database already holds this size skips the seeding. gunicorn serves
the real stack; a staff member (not a superuser: view permissions only) signs in through the login page, and each
page is loaded once to warm up, then timed `LOADS` times: median and max.

Run alone: `python benchmarks/run.py --only admin_1m` (`--quick`: 20,000 messages). `python benchmarks/admin_1m.py
prepare` is the seeding step, run by the scenario in a process of its own (Django set up on the scenario's
database).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOADS = 5
EVENTS_PER_MESSAGE = 5
PAGE_TARGET_S = 1.0
STAFF_USER, STAFF_PASSWORD = "bench-operator", "bench-operator-password"  # noqa: S105 - a benchmark's own user
CAMPAIGNS, BATCHES = 40, 20
# Shares of the whole: (value, weight).
CHANNELS = [("sms", 50), ("email", 35), ("whatsapp", 12), ("messenger", 3)]
SETTLED = [("delivered", 780), ("sent", 80), ("undelivered", 40), ("failed", 30), ("cancelled", 10)]
SETTLED += [("suppressed", 10), ("review", 1)]
RECENT = [("queued", 40), ("sending", 5), ("scheduled", 30), ("delivered", 600), ("sent", 300), ("failed", 25)]


def database_name() -> str:
    return os.environ.get("BENCH_DB", "tidings_bench") + "_admin_1m"


# --- seeding (run as `admin_1m.py prepare MESSAGES`, Django set up on the scenario's database) -----------------
def prepare(messages: int) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import Permission, User
    from django.db import connection

    from campaigns.models import Campaign
    from deliveries.models import Batch

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS admin_1m_seed (messages bigint NOT NULL)")
        cursor.execute("SELECT messages FROM admin_1m_seed")
        row = cursor.fetchone()
    if row is None or row[0] != messages:
        print(f"seeding {messages:,} messages and {messages * EVENTS_PER_MESSAGE:,} events…", file=sys.stderr)
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE deliveries_messageevent, deliveries_message, campaigns_batch, campaigns_campaign,"
                " admin_1m_seed RESTART IDENTITY CASCADE"
            )
        now = datetime.now(UTC)
        campaigns = Campaign.objects.bulk_create(
            Campaign(name=f"Campaign {i:02d}: {'spring sale' if i % 3 == 0 else 'newsletter'}", status="completed")
            for i in range(CAMPAIGNS)
        )
        batches = Batch.objects.bulk_create(
            Batch(kind="api", key=f"bench-{i}", accepted=1000, finished_at=now) for i in range(BATCHES)
        )
        started = time.monotonic()
        _copy_rows(messages, now, [c.pk for c in campaigns], [b.pk for b in batches])
        with connection.cursor() as cursor:
            # As autovacuum leaves a live table: statistics for the planner, the visibility map for index-only scans.
            cursor.execute("VACUUM ANALYZE deliveries_message")
            cursor.execute("VACUUM ANALYZE deliveries_messageevent")
            cursor.execute("INSERT INTO admin_1m_seed VALUES (%s)", [messages])
        print(f"seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)
    # The dashboard, the campaign page and /metrics read the analytics rollups: bring them up to date over the
    # seeded events (a no-op on a later run: the job's watermark is where the last one stopped).
    from django.core.management import call_command

    started = time.monotonic()
    call_command("rollup_analytics", verbosity=0)
    print(f"rolled up in {time.monotonic() - started:.0f} s", file=sys.stderr)
    user, _ = User.objects.get_or_create(username=STAFF_USER, defaults={"is_staff": True})
    user.is_staff, user.is_superuser = True, False
    user.set_password(STAFF_PASSWORD)
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))


def _pick(choices: list[tuple[str, int]], rng: random.Random) -> str:
    return rng.choices([value for value, _ in choices], weights=[weight for _, weight in choices])[0]


def _copy_rows(count: int, now: datetime, campaign_ids: list[int], batch_ids: list[int]) -> None:
    """Messages in id order, created over the last 90 days (ids grow with time, as in life), and their events."""
    from django.db import connection

    from deliveries.models import Message, MessageEvent

    rng = random.Random(1)  # the same data each run
    fields = [f for f in Message._meta.concrete_fields if f.column != "id"]
    defaults = {f.attname: f.get_default() for f in fields}
    event_fields = [f for f in MessageEvent._meta.concrete_fields if f.column != "id"]
    span = timedelta(days=90)
    # Each campaign sends in a window of its own; campaign 0 is the big one (most recent, ~15% of all messages).
    windows = sorted(rng.sample(range(1, 89 * 24), len(campaign_ids) - 1), reverse=True)
    raw = connection.connection  # psycopg's connection, for COPY
    message_columns = ", ".join(f.column for f in fields)
    event_columns = ", ".join(f.column for f in event_fields)
    statuses: list[str] = []
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY deliveries_message ({message_columns}) FROM STDIN") as copy:  # noqa: S608
            for i in range(count):
                values = _message(i, count, now, span, rng, campaign_ids, windows, batch_ids)
                statuses.append(values["status"])
                copy.write_row([_adapt({**defaults, **values}[f.attname], f) for f in fields])
        with cursor.copy(f"COPY deliveries_messageevent ({event_columns}) FROM STDIN") as copy:  # noqa: S608
            for i in range(count):
                for event in _events(i + 1, statuses[i], _created(i, count, now, span)):
                    copy.write_row([_adapt(event.get(f.attname, ""), f) for f in event_fields])
    if not raw.autocommit:
        raw.commit()


def _adapt(value, field):
    from django.db.models import JSONField
    from psycopg.types.json import Jsonb

    if isinstance(field, JSONField):
        return Jsonb(value if value is not None else {})
    return value


def _created(i: int, count: int, now: datetime, span: timedelta) -> datetime:
    return now - span + span * (i / count)


def _message(i, count, now, span, rng, campaign_ids, windows, batch_ids) -> dict:
    created = _created(i, count, now, span)
    recent = now - created < timedelta(hours=2)
    channel = _pick(CHANNELS, rng)
    status = _pick(RECENT if recent else SETTLED, rng)
    person = rng.randrange(300_000)
    if channel in ("sms", "whatsapp"):
        recipient = f"+1415{7000000 + person}"
    elif channel == "email":
        recipient = f"user{person}@example{person % 50}.com"
    else:
        recipient = str(10**15 + person)
    hours_ago = (now - created).total_seconds() / 3600
    campaign = None
    if hours_ago < 12 * 24 and i % 100 < 70:  # the big campaign: the last 12 days, most messages of them
        campaign = campaign_ids[0]
    elif i % 100 < 55:
        for index, start in enumerate(windows, start=1):
            if start - 48 <= hours_ago < start:
                campaign = campaign_ids[index]
                break
    batch = batch_ids[i % len(batch_ids)] if campaign is None and i % 10 == 0 else None
    sent = status in ("sent", "delivered", "undelivered", "review") or (status == "failed" and i % 2)
    provider = {"sms": "twilio", "whatsapp": "twilio", "email": "postmark", "messenger": "messenger"}[channel]
    if not sent:
        provider_id = ""
    elif provider == "twilio":
        provider_id = f"SM{uuid.UUID(int=rng.getrandbits(128)).hex}"
    elif provider == "postmark":
        provider_id = str(uuid.UUID(int=rng.getrandbits(128)))
    else:
        provider_id = f"m_{uuid.UUID(int=rng.getrandbits(128)).hex}"
    second = timedelta(seconds=1)
    values = {
        "channel": channel,
        "recipient": recipient,
        "subject": f"Your order {i} has shipped" if channel == "email" else "",
        "body": f"Hello! Your order {i} is on its way. Track it at https://example.com/t/{i} Reply STOP to opt out.",
        "campaign_id": campaign,
        "batch_id": batch,
        "category": "transactional" if campaign is None and i % 3 == 0 else "marketing",
        "priority": "high" if i % 50 == 0 else "default",
        "status": status,
        "provider": provider if sent or status == "failed" else "",
        "provider_message_id": provider_id,
        "attempts": 1 if sent or status == "failed" else 0,
        "created_at": created,
        "updated_at": created + 5 * second,
        "queued_at": created,
        "send_at": now + timedelta(hours=3) if status == "scheduled" else None,
    }
    if status not in ("scheduled", "queued"):
        values["sending_at"] = created + second
    if sent:
        values["sent_at"] = created + 2 * second
    if status == "delivered":
        values["delivered_at"] = created + 4 * second
        if channel == "email" and i % 3 == 0:
            values.update(opens_count=1 + i % 3, first_opened_at=created + timedelta(hours=1))
            if i % 9 == 0:
                values.update(clicks_count=1, first_clicked_at=created + timedelta(hours=1, minutes=2))
    if status in ("failed", "undelivered"):
        values["failed_at"] = created + 4 * second
        code = {"twilio": "30006", "postmark": "1", "messenger": "551"}[provider]
        values.update(last_error_code=code, last_error_message="The provider could not deliver the message.")
    if status == "cancelled":
        values["cancelled_at"] = created + second
    return values


# The status changes that lead to each status; every message then has provider reports up to five events.
PATHS = {
    "delivered": ["queued", "sending", "sent", "delivered"],
    "sent": ["queued", "sending", "sent"],
    "undelivered": ["queued", "sending", "sent", "undelivered"],
    "failed": ["queued", "sending", "failed"],
    "review": ["queued", "sending", "review"],
    "cancelled": ["scheduled", "cancelled"],
    "suppressed": ["queued", "suppressed"],
    "queued": ["queued"],
    "sending": ["queued", "sending"],
    "scheduled": ["scheduled"],
}


def _events(message_id: int, status: str, created: datetime) -> list[dict]:
    path = PATHS[status]
    events = [
        {
            "message_id": message_id,
            "kind": "status",
            "from_status": path[n - 1] if n else "",
            "to_status": to_status,
            "code": "30006" if to_status in ("failed", "undelivered") else "",
            "detail": "",
            "data": {},
            "created_at": created + timedelta(seconds=n),
        }
        for n, to_status in enumerate(path)
    ]
    for n in range(EVENTS_PER_MESSAGE - len(events)):
        events.append(
            {
                "message_id": message_id,
                "kind": "provider",
                "detail": f"Status callback: {status}",
                "data": {"MessageStatus": status},
                "dedupe_key": f"bench:{message_id}:{n}",
                "created_at": created + timedelta(seconds=len(path) + n),
            }
        )
    return events


# --- the scenario (run by benchmarks/run.py) ---------------------------------------------------------------------
def scenario_admin_1m(bench, messages: int, web_port: int) -> dict:
    import requests

    url = bench.args.database_url.rsplit("/", 1)[0] + "/" + database_name()
    _create_database(bench.args.database_url, database_name())
    # Every load computes its figures: the dashboard and the queue monitor keep theirs in the shared cache for a few
    # seconds, which would time the cache, not the queries.
    env = {**bench.env, "DATABASE_URL": url, "DASHBOARD_CACHE_SECONDS": "0"}
    started = time.monotonic()
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "benchmarks/admin_1m.py", "prepare", str(messages)], cwd=ROOT, env=env, check=True)
    prepared_s = round(time.monotonic() - started, 1)
    web = bench.spawn_web(web_port, env=env)
    base = f"http://127.0.0.1:{web_port}"
    try:
        bench.wait_http(f"{base}/health/live")
        session = requests.Session()
        _log_in(session, base)
        pages = _pages(env)
        timings = {name: _time_page(session, base + path) for name, path in pages.items()}
    finally:
        bench.stop(web)
    slowest = max(timings.items(), key=lambda item: item[1]["max_s"])
    return {
        "messages": messages,
        "events": messages * EVENTS_PER_MESSAGE,
        "prepare_s": prepared_s,
        "loads_each": LOADS,
        "pages": timings,
        "slowest_page": slowest[0],
        "slowest_max_s": slowest[1]["max_s"],
        "all_under_1s": all(t["max_s"] < PAGE_TARGET_S and t["status"] == 200 for t in timings.values()),
    }


def _create_database(database_url: str, name: str) -> None:
    import psycopg

    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def _log_in(session, base: str) -> None:
    login = f"{base}/admin/login/"
    session.get(login, timeout=30)
    response = session.post(
        login,
        data={
            "username": STAFF_USER,
            "password": STAFF_PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": login},
        timeout=30,
    )
    if "sessionid" not in session.cookies:
        raise RuntimeError(f"admin_1m: the staff user could not sign in (HTTP {response.status_code})")


def _pages(env: dict) -> dict[str, str]:
    """The pages to time, with ids read from the seeded database."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as connection:

        def one(sql: str):
            return connection.execute(sql).fetchone()[0]

        big_campaign = one("SELECT min(id) FROM campaigns_campaign")
        old_campaign = one("SELECT max(campaign_id) FROM deliveries_message WHERE campaign_id IS NOT NULL")
        batch = one("SELECT min(id) FROM campaigns_batch")
        failed = one("SELECT max(id) FROM deliveries_message WHERE status = 'failed' AND provider = 'twilio'")
        delivered = one("SELECT max(id) FROM deliveries_message WHERE status = 'delivered'")
        provider_id = one(f"SELECT provider_message_id FROM deliveries_message WHERE id = {delivered}")  # noqa: S608
        phone = one("SELECT recipient FROM deliveries_message WHERE channel = 'sms' ORDER BY id LIMIT 1")
        email = one("SELECT recipient FROM deliveries_message WHERE channel = 'email' ORDER BY id LIMIT 1")
    today = datetime.now(UTC).date()
    typed_phone = f"{phone[:2]} ({phone[2:5]}) {phone[5:8]}-{phone[8:]}"  # as a person types it
    messages = "/admin/deliveries/message/"
    return {
        "message list": messages,
        "list page 50": f"{messages}?p=50",
        "status failed": f"{messages}?status__exact=failed",
        "status delivered": f"{messages}?status__exact=delivered",
        "status queued": f"{messages}?status__exact=queued",
        "status review": f"{messages}?status__exact=review",
        "channel messenger": f"{messages}?channel__exact=messenger",
        "category transactional": f"{messages}?category__exact=transactional",
        "priority high": f"{messages}?priority__exact=high",
        "created past 7 days": f"{messages}?created_from={today - timedelta(days=7)}",
        "created range, 60 days ago": (
            f"{messages}?created_from={today - timedelta(days=62)}&created_to={today - timedelta(days=60)}"
        ),
        "failed sms, past 30 days": (
            f"{messages}?status__exact=failed&channel__exact=sms&created_from={today - timedelta(days=30)}"
        ),
        "campaign (big)": f"{messages}?campaign__id__exact={big_campaign}",
        "campaign (older)": f"{messages}?campaign__id__exact={old_campaign}",
        "batch": f"{messages}?batch__id__exact={batch}",
        "search recipient (typed)": f"{messages}?q={typed_phone}",
        "search email (upper case)": f"{messages}?q={email.upper()}",
        "search provider id": f"{messages}?q={provider_id}",
        "search campaign name": f"{messages}?q=Campaign 00: spring sale",
        "message page": f"{messages}{failed}/change/",
        "message timeline json": f"{messages}{failed}/timeline/",
        "dashboard (admin index)": "/admin/",
        "dashboard, trends 30 days": "/admin/?trends_range=30d",
        "dashboard, trends 30 days sms": "/admin/?trends_range=30d&trends_channel=sms",
        "queue monitor": "/admin/console/queues/",
        "campaign page": f"/admin/campaigns/campaign/{big_campaign}/change/",
        "campaign progress": f"/admin/campaigns/campaign/{big_campaign}/progress/",
        "campaign list": "/admin/campaigns/campaign/",
        "batch list": "/admin/deliveries/batch/",
    }


def _time_page(session, url: str) -> dict:
    response = session.get(url, timeout=120)  # warm-up: connections, template caches
    times = []
    for _ in range(LOADS):
        started = time.perf_counter()
        response = session.get(url, timeout=120)
        times.append(time.perf_counter() - started)
    return {
        "status": response.status_code,
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "bytes": len(response.content),
    }


def print_table(result: dict) -> None:
    print(f"\nadmin_1m: {result['messages']:,} messages, {result['events']:,} events; {LOADS} loads each")
    print(f"  {'page':<30} {'status':>6} {'median':>8} {'max':>8}")
    for name, timing in result["pages"].items():
        flag = "" if timing["max_s"] < PAGE_TARGET_S and timing["status"] == 200 else "  <- over 1 s or not 200"
        print(f"  {name:<30} {timing['status']:>6} {timing['median_s']:>7.3f}s {timing['max_s']:>7.3f}s{flag}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "prepare":
        sys.path.insert(0, str(ROOT))
        prepare(int(sys.argv[2]))
    else:
        raise SystemExit("usage: admin_1m.py prepare MESSAGES (the admin_1m scenario runs it)")
