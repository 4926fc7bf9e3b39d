"""The statements behind a transition: rows found by id whatever the planner thinks of a status's index, prepared
once, and the same timeline events whichever way they are written."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.db.status_changes import StatusChange
from deliveries.models import Message, MessageEvent, Status
from deliveries.state import transition
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


# The transitions the workers and the dispatcher make thousands of times, with the partial index of the status
# they leave.
BUSY_TRANSITIONS = [
    (Status.QUEUED, Status.SENDING, "message_queued_at"),  # a worker's claim
    (Status.SENDING, Status.SENT, "message_sending_lease"),  # its record of the calls
    (Status.SCHEDULED, Status.QUEUED, "message_pending_send_at"),  # the dispatcher's
]


def _rows_under_stale_statistics(status: str, count: int) -> list[int]:
    """2,000 messages in `status`, with statistics taken when none was: its partial index looks empty to the
    planner and holds every row, as during a burst. Returns the ids of the first `count`."""
    Message.objects.bulk_create(
        [Message(channel="sms", recipient=f"+1415555{i:04d}", status=Status.SENT) for i in range(2000)]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deliveries_message")
    Message.objects.update(status=status)
    return list(Message.objects.order_by("pk").values_list("pk", flat=True)[:count])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="which index serves a query is PostgreSQL's planner's")
@pytest.mark.parametrize(("from_status", "to_status", "status_index"), BUSY_TRANSITIONS)
def test_a_transition_finds_its_rows_by_id_however_stale_the_statistics(from_status, to_status, status_index):
    # Statistics taken while no row was in the source status make its partial index look empty, and it then holds
    # every row of a burst: the rows must be looked up by id, or each transition scans the whole burst.
    ids = _rows_under_stale_statistics(from_status, 20)
    with CaptureQueriesContext(connection) as queries:
        moved = transition(ids, to_status=to_status, from_statuses=[from_status])
    assert sorted(moved) == ids
    [update] = [query["sql"] for query in queries if 'UPDATE "deliveries_message"' in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {update}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "deliveries_message_pkey" in plan, plan
    assert status_index not in plan, plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.parametrize(("from_status", "to_status", "status_index"), BUSY_TRANSITIONS)
def test_a_transition_run_again_and_again_is_prepared_and_its_generic_plan_finds_rows_by_id(
    from_status, to_status, status_index
):
    # The workers run the same few transitions thousands of times a second: prepared once per connection, they
    # are not parsed and planned each time. PostgreSQL may then run a generic plan, made without the values, which
    # must look the rows up by id as the custom plans above do.
    ids = _rows_under_stale_statistics(from_status, 60)
    for start in range(0, 60, 10):  # psycopg prepares a statement on its fifth run
        assert len(transition(ids[start : start + 10], to_status=to_status, from_statuses=[from_status])) == 10
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, parameter_types::text[] FROM pg_prepared_statements "
            "WHERE statement LIKE %s AND statement LIKE %s",
            ['%UPDATE "deliveries_message"%', f"%{to_status}%"],
        )
        [(statement, types)] = cursor.fetchall()
        cursor.execute(f"PREPARE generic_transition ({', '.join(types)}) AS {statement}")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"EXPLAIN EXECUTE generic_transition ({', '.join(['NULL'] * len(types))})")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE generic_transition")
    assert "deliveries_message_pkey" in plan, plan
    assert status_index not in plan, plan


def _cancel_steps(ids, *, inline_events):
    change = StatusChange(
        to_status=Status.CANCELLED,
        updates={"status": Status.CANCELLED, "updated_at": timezone.now()},
        extra_filter={},
        per_row={},
        returning=(),
        kind=MessageEvent.Kind.STATUS,
        code="manual",
        detail="Shared reason.",
        data={"by": "test"},
        events_by_id={ids[0]: ("Its own reason.", {"note": "ü"})},
        now=timezone.now(),
    )
    change.inline_events = inline_events
    with change.transaction(deciding=False):
        steps = change.update_steps(ids, Status.QUEUED)
        with connection.cursor() as cursor:
            statement = next(steps)
            cursor.execute(statement.sql, statement.params)
            try:
                steps.send(cursor.fetchall())
            except StopIteration as done:
                moved = done.value
        change.events_write()
    return moved


def _events_of(ids):
    rows = MessageEvent.objects.filter(message_id__in=ids).order_by("message_id")
    return [
        (ids.index(e.message_id), e.kind, e.from_status, e.to_status, e.code, e.detail, e.data, e.dedupe_key)
        for e in rows
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="events written by the UPDATE itself: PostgreSQL's")
def test_events_written_by_the_update_itself_are_those_inserted_after_it():
    inline = [m.pk for m in MessageFactory.create_batch(3, status=Status.QUEUED)]
    after = [m.pk for m in MessageFactory.create_batch(3, status=Status.QUEUED)]
    assert sorted(_cancel_steps(inline, inline_events=True)) == inline
    assert sorted(_cancel_steps(after, inline_events=False)) == after
    assert _events_of(inline) == _events_of(after)
    assert _events_of(inline)[0][5:7] == ("Its own reason.", {"note": "ü"})
    assert _events_of(inline)[1][5:7] == ("Shared reason.", {"by": "test"})
