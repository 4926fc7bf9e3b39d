"""The fast paths of message creation give exactly what the general ones give: the bulk insert (COPY on
PostgreSQL) stores the same rows and events as message_create, plain requests validate as the serializer does,
and a push to Redis reuses its connection."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import django_rq
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from redis.connection import Connection

from deliveries.api.serializers import MessageCreateSerializer, plain_message_validate
from deliveries.db.row_inserts import rows_insert
from deliveries.models import Batch, Message, MessageEvent, Status
from deliveries.services.api_keys import api_key_authenticate, api_key_revoke
from deliveries.services.bulk import RenderFailure, messages_create_many
from deliveries.services.messages import message_create, message_request_validate
from guard.services.pricing import price_list
from tests.support import other_connections, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Columns that differ between any two messages by nature, not by the path that stored them.
PER_MESSAGE = {"id", "job_id", "created_at", "updated_at", "queued_at", "batch"}


def stored(message_id):
    message = Message.objects.get(pk=message_id)
    row = {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields if f.name not in PER_MESSAGE}
    events = list(MessageEvent.objects.filter(message=message).values("kind", "from_status", "to_status", "code"))
    return row, events


def request(**overrides):
    fields = {
        "channel": "sms",
        "to": "+1 415 555 0100",
        "body": "Hello",
        "metadata": {"order": 7, "tags": ["a", "b"]},
        "media_urls": ["https://example.com/a.png"],
        "sender": "Tidings",
        "category": "transactional",
        "priority": "high",
        "valid_for": 600,
        **overrides,
    }
    return message_request_validate(**fields)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"send_at": timezone.now() + timedelta(hours=1)},
        {
            "channel": "email",
            "to": "Ada@Example.COM",
            "subject": "Hi",
            "html_body": "<p>Hi</p>",
            "media_urls": [],
            "sender": "Shop <shop@example.com>",
        },
        {"content_sid": "HX" + "0" * 32, "content_variables": {"1": "Ada"}, "body": ""},
    ],
)
def test_a_message_stored_in_bulk_is_the_row_message_create_stores(api_key, overrides):
    validated = request(**overrides)
    single = message_create(request=validated[0], content=validated[1], api_key=api_key)
    bulk = messages_create_many(items=[validated], api_key=api_key, collect_ids=True)
    single_row, single_events = stored(single.pk)
    bulk_row, bulk_events = stored(bulk.ids[0])
    assert bulk_row == single_row
    assert bulk_events == single_events
    assert MessageEvent.objects.get(message_id=bulk.ids[0]).detail == f"Created in bulk by API key {api_key.name}."


def test_bulk_rows_keep_their_order_types_and_foreign_keys(api_key):
    batch = Batch.objects.create(kind=Batch.Kind.API, api_key=api_key)
    later = timezone.now() + timedelta(minutes=5)
    items = [request(to=f"+1415{7000000 + i}", send_at=later if i % 2 else None) for i in range(7)]
    items.append((items[0][0], RenderFailure(reason="No value for 'name'.")))
    result = messages_create_many(items=items, api_key=api_key, batch=batch, chunk_size=3, collect_ids=True)
    assert result.ids == sorted(result.ids)
    messages = Message.objects.in_bulk(result.ids)
    assert [messages[pk].recipient for pk in result.ids[:7]] == [f"+1415{7000000 + i}" for i in range(7)]
    assert [messages[pk].status for pk in result.ids] == [Status.QUEUED, Status.SCHEDULED] * 3 + [
        Status.QUEUED,
        Status.FAILED,
    ]
    assert all(messages[pk].batch_id == batch.pk and messages[pk].api_key_id == api_key.pk for pk in result.ids)
    assert messages[result.ids[1]].send_at == later
    assert messages[result.ids[0]].metadata == {"order": 7, "tags": ["a", "b"]}
    failed = messages[result.ids[-1]]
    assert (failed.last_error_code, failed.last_error_message) == ("render", "No value for 'name'.")
    assert MessageEvent.objects.get(message=failed).kind == MessageEvent.Kind.ERROR
    # A later single insert takes the next id: the ids given out in bulk came from the table's own sequence.
    assert message_create(request=request()[0]).pk > max(result.ids)


def test_bulk_rows_keep_each_instant_to_the_microsecond_whatever_its_time_zone():
    # COPY writes timestamps as text (each distinct one formatted once): the offset must travel with it.
    new_york = timezone.now().astimezone(ZoneInfo("America/New_York")) + timedelta(hours=3, microseconds=7)
    kolkata = new_york.astimezone(ZoneInfo("Asia/Kolkata")) + timedelta(minutes=1)
    items = [request(to=f"+1415{7000000 + i}", send_at=at) for i, at in enumerate([new_york, kolkata, new_york])]
    ids = messages_create_many(items=items, collect_ids=True).ids
    stored_at = [Message.objects.get(pk=pk).send_at for pk in ids]
    assert stored_at == [new_york, kolkata, new_york]
    assert stored_at[1] - stored_at[0] == timedelta(minutes=1)


def test_bulk_insert_on_postgresql_is_three_statements_a_chunk():
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    items = [request(to=f"+1415{7000000 + i}") for i in range(1200)]
    price_list()  # read once per PRICE_CACHE_SECONDS by each process, not per chunk
    # In a transaction, so the chunks are written on this connection (outside one a writer thread has its own).
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        messages_create_many(items=items, chunk_size=600)
    # Per chunk: the messages' ids from their sequence, then two COPYs (which do not pass through the query
    # log); the events take theirs from their table as they go in.
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [s for s in statements if s in ("SELECT", "INSERT", "UPDATE")] == ["SELECT"] * 2
    assert Message.objects.count() == MessageEvent.objects.count() == 1200
    events = MessageEvent.objects.order_by("pk").values_list("message_id", flat=True)
    assert list(events) == sorted(Message.objects.values_list("pk", flat=True))  # one each, in the same order


def test_outside_a_transaction_writer_threads_store_the_chunks_in_order_and_close_their_connections(settings):
    settings.SEND_BATCH_SIZE = 100
    before = other_connections() if connection.vendor == "postgresql" else 0
    progress = []
    items = (request(to=f"+1415{7000000 + i}", body=f"Hello {i}") for i in range(1050))
    result = messages_create_many(items=items, chunk_size=200, on_chunk=progress.append, collect_ids=True)
    assert progress == [200, 400, 600, 800, 1000, 1050]
    bodies = dict(Message.objects.values_list("pk", "body"))
    assert [bodies[pk] for pk in result.ids] == [f"Hello {i}" for i in range(1050)]
    assert result.ids == sorted(result.ids)  # ids follow the items, whichever writer finished first
    assert (result.created, result.queued) == (1050, 1050)
    assert (result.first_id, result.last_id) == (result.ids[0], result.ids[-1])
    assert django_rq.get_queue("high").count == 11  # 200-row chunks, 100 per job: 2 a chunk, 1 for the last 50
    if connection.vendor == "postgresql":
        # A server process leaves pg_stat_activity a moment after its client closes.
        wait_for(lambda: other_connections() <= before, timeout=5, message="the writers' connections to close")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="writer threads are for PostgreSQL")
def test_a_single_chunk_is_stored_on_the_callers_own_connection():
    # No writer thread, so no new connection to set up for a small call: the ids reserved for the messages
    # (the events need none) and both inserts run on this thread's connection.
    with CaptureQueriesContext(connection) as queries:
        result = messages_create_many(items=[request(to=f"+1415{7000000 + i}") for i in range(5)], chunk_size=200)
    assert result.created == 5
    assert sum("nextval" in query["sql"] for query in queries) == 1
    assert MessageEvent.objects.filter(message__in=Message.objects.all()).count() == 5


PLAIN_REQUESTS = [
    {"channel": "sms", "to": "+14155550100", "body": "Hi"},
    {"channel": "sms", "to": "  +1 415 555 0100 ", "body": "  spaced body  ", "priority": "low"},
    {"channel": "email", "to": "ada@example.com", "subject": " Hello ", "body": "x", "category": "transactional"},
    {"channel": "sms", "to": "+14155550100", "body": "Hi", "sender": "Tidings", "language": "fr"},
    {"channel": "whatsapp", "to": "whatsapp:+14155550100", "body": "Hi", "html_body": ""},
    {"channel": "sms", "to": "+14155550100", "body": "x" * 1600},  # the longest SMS body
]
NOT_PLAIN = [
    {"channel": "sms", "to": "+14155550100"},  # no body: the service refuses it
    {"channel": "sms", "to": "   ", "body": "Hi"},  # blank after trimming
    {"channel": "sms", "to": "+14155550100", "body": "Hi\x00"},  # NUL
    {"channel": "sms", "to": "+14155550100", "body": "Hi", "subject": "s" * 256},  # too long
    {"channel": "fax", "to": "+14155550100", "body": "Hi"},  # not a channel
    {"channel": "sms", "to": 14155550100, "body": "Hi"},  # a number, which DRF would turn into a string
    {"channel": "sms", "to": "+14155550100", "body": "Hi", "metadata": {"a": 1}},  # not a string field
    {"channel": "sms", "to": "+14155550100", "body": "Hi", "template": "welcome"},
    {"channel": "sms", "to": "+14155550100", "body": "Hi", "unknown": "x"},
    {"to": "+14155550100", "body": "Hi"},  # no channel
    {"channel": "sms", "to": "not a number", "body": "Hi"},
    {"channel": "sms", "to": "+14155550100", "body": "Hi", "priority": ""},
    {"channel": "sms", "to": "+14155550100", "body": "x" * 1601},  # over Twilio's 1,600: the service refuses it
    {"channel": "sms", "to": "+14155550100", "body": "Hi", "sendat": "2030-01-01T00:00:00Z"},  # a typo
]


@pytest.mark.parametrize("data", PLAIN_REQUESTS)
def test_a_plain_request_validates_exactly_as_the_serializer_does(data):
    serializer = MessageCreateSerializer(data=data)
    assert serializer.is_valid(), serializer.errors
    fast = plain_message_validate(data)
    assert fast is not None
    # expires_at comes from "now" plus SMS_VALID_FOR / EMAIL_VALID_FOR, so compare it within a second.
    fast_request, slow_request = fast["request"], serializer.validated_data["request"]
    if slow_request.expires_at is not None:
        assert abs(fast_request.expires_at - slow_request.expires_at) < timedelta(seconds=1)
        fast_request.expires_at = slow_request.expires_at
    assert fast == dict(serializer.validated_data)


@pytest.mark.parametrize("data", NOT_PLAIN)
def test_anything_else_is_left_to_the_serializer(data):
    assert plain_message_validate(data) is None


def test_a_revoked_key_stops_working_at_once_in_the_process_that_revoked_it(api_key):
    assert api_key_authenticate(api_key.raw) == api_key
    with CaptureQueriesContext(connection) as queries:
        assert api_key_authenticate(api_key.raw) == api_key
    assert len(queries) == 0  # remembered for a few seconds
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(api_key.raw) is None
    assert api_key_authenticate(api_key.raw[:-1] + "x") is None


def test_a_single_message_costs_one_redis_round_trip_and_one_statement_on_postgresql(api):
    api.post("/api/v1/messages/", {"channel": "sms", "to": "+14155550100", "body": "warm up"}, format="json")
    round_trips = []
    send = Connection.send_packed_command

    def counting_send(self, command, check_health=True):
        round_trips.append(command)
        return send(self, command, check_health)

    Connection.send_packed_command = counting_send
    try:
        with CaptureQueriesContext(connection) as queries:
            response = api.post(
                "/api/v1/messages/", {"channel": "sms", "to": "+14155550101", "body": "Hi"}, format="json"
            )
    finally:
        Connection.send_packed_command = send
    assert response.status_code == 201
    assert len(round_trips) == 1  # the job, in one MULTI/EXEC pipeline, on a connection already open
    # No API key lookup, no SELECT: on PostgreSQL one INSERT of the message feeding its event's INSERT, which
    # commits by itself; elsewhere BEGIN, the two INSERTs, COMMIT.
    assert len(queries) == (1 if connection.vendor == "postgresql" else 4)
    assert django_rq.get_queue("default").count == 2


def test_rows_inserted_without_their_ids_are_numbered_by_the_table():
    # The events of a bulk insert: nobody needs their keys back, so none are reserved or read.
    message = message_create(request=message_request_validate(channel="sms", to="+14155550100", body="Hi")[0])
    before = set(MessageEvent.objects.values_list("pk", flat=True))
    now = timezone.now()
    rows = [{"message_id": message.pk, "kind": "note", "detail": f"note {i}", "created_at": now} for i in range(3)]
    with transaction.atomic():
        returned = rows_insert(MessageEvent, rows, now=now, return_ids=False)
    assert returned == []
    added = MessageEvent.objects.exclude(pk__in=before).order_by("pk")
    assert [(e.message_id, e.kind, e.detail, e.code, e.data) for e in added] == [
        (message.pk, "note", f"note {i}", "", {}) for i in range(3)
    ]
    assert min(e.pk for e in added) > max(before)  # from the table's own sequence, past the rows already there
