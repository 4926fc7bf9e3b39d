import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.models import Message, MessageEvent, Status
from deliveries.state import (
    TRANSITIONS,
    InvalidTransition,
    among,
    pk_among,
    sources_for,
    transition,
    transitions_together,
)
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def test_every_status_has_a_row_in_the_transition_table():
    assert set(TRANSITIONS) == set(Status.values)


def test_cancelled_and_delivered_are_dead_ends():
    assert TRANSITIONS[Status.CANCELLED] == frozenset()
    assert TRANSITIONS[Status.DELIVERED] == frozenset()


def test_asking_for_a_transition_the_machine_lacks_raises():
    with pytest.raises(InvalidTransition):
        sources_for(Status.SENDING, [Status.SENT])


def test_transition_moves_only_rows_in_an_allowed_status_and_says_which():
    queued = MessageFactory(status=Status.QUEUED)
    scheduled = MessageFactory(status=Status.SCHEDULED)
    sent = MessageFactory(status=Status.SENT)
    moved = transition([queued.pk, scheduled.pk, sent.pk], to_status=Status.CANCELLED, detail="test")
    assert sorted(moved) == sorted([queued.pk, scheduled.pk])
    assert Message.objects.get(pk=sent.pk).status == Status.SENT
    cancelled = Message.objects.get(pk=queued.pk)
    assert cancelled.status == Status.CANCELLED
    assert cancelled.cancelled_at is not None
    assert list(cancelled.events.values_list("from_status", "to_status")) == [("queued", "cancelled")]
    assert not Message.objects.get(pk=sent.pk).events.exists()


def test_each_moved_message_gets_one_event_with_its_own_detail_or_the_shared_one():
    own, shared, elsewhere = (MessageFactory(status=Status.SENDING) for _ in range(3))
    Message.objects.filter(pk=elsewhere.pk).update(status=Status.SENT)
    moved = transition(
        [own.pk, shared.pk, elsewhere.pk],
        to_status=Status.FAILED,
        from_statuses=[Status.SENDING],
        code="30003",
        detail="Shared reason.",
        data={"attempt": 1},
        events_by_id={own.pk: ("Its own reason.", {"attempt": 2, "note": "ü"}), elsewhere.pk: ("Not moved.", {})},
    )
    assert sorted(moved) == [own.pk, shared.pk]
    events = MessageEvent.objects.filter(message__in=[own, shared, elsewhere])
    assert sorted(events.values_list("message_id", "from_status", "to_status", "code", "detail", "data")) == sorted(
        [
            (own.pk, "sending", "failed", "30003", "Its own reason.", {"attempt": 2, "note": "ü"}),
            (shared.pk, "sending", "failed", "30003", "Shared reason.", {"attempt": 1}),
        ]
    )
    assert len({event.created_at for event in events}) == 1


def test_the_second_of_two_identical_transitions_moves_nothing():
    message = MessageFactory(status=Status.QUEUED)
    assert transition([message.pk], to_status=Status.SENDING) == [message.pk]
    assert transition([message.pk], to_status=Status.SENDING) == []
    assert message.events.count() == 1


def test_extra_filter_makes_a_transition_conditional_on_more_than_status():
    message = MessageFactory(status=Status.SENDING, provider="a")
    assert transition([message.pk], to_status=Status.SENT, extra_filter={"provider": "b"}) == []
    assert transition([message.pk], to_status=Status.SENT, extra_filter={"provider": "a"}) == [message.pk]


def test_delivered_never_goes_back_to_sent():
    message = MessageFactory(status=Status.DELIVERED)
    with pytest.raises(InvalidTransition):
        transition([message.pk], to_status=Status.SENT, from_statuses=[Status.DELIVERED])
    assert transition([message.pk], to_status=Status.SENT) == []
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_suppressed_is_a_dead_end_reached_only_before_sending():
    assert TRANSITIONS[Status.SUPPRESSED] == frozenset()
    assert set(sources_for(Status.SUPPRESSED)) == {Status.SCHEDULED, Status.QUEUED, Status.SENDING}


def test_a_receipt_may_overtake_the_worker_but_never_move_a_message_back():
    # Review too: a message whose worker died mid-call is settled by the provider's receipt.
    assert set(sources_for(Status.DELIVERED)) == {Status.SENDING, Status.SENT, Status.REVIEW}
    assert set(sources_for(Status.UNDELIVERED)) == {Status.SENDING, Status.SENT, Status.REVIEW}
    for final in (Status.DELIVERED, Status.UNDELIVERED, Status.SUPPRESSED, Status.CANCELLED):
        assert Status.SENT not in TRANSITIONS[final]


def test_a_provider_report_is_recorded_once_per_message():
    from django.db import IntegrityError, transaction

    from deliveries.models import MessageEvent

    message = MessageFactory(status=Status.SENT)
    other = MessageFactory(status=Status.SENT)
    MessageEvent.objects.create(message=message, kind="provider", dedupe_key="twilio:SM1:delivered")
    MessageEvent.objects.create(message=other, kind="provider", dedupe_key="twilio:SM1:delivered")
    MessageEvent.objects.create(message=message, kind="note")
    MessageEvent.objects.create(message=message, kind="note")  # events without a key are never deduplicated
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageEvent.objects.create(message=message, kind="provider", dedupe_key="twilio:SM1:delivered")


def test_a_transition_can_return_the_moved_rows_as_the_update_left_them():
    token = uuid.uuid4()
    lease = timezone.now() + timedelta(minutes=5)
    queued = MessageFactory(status=Status.QUEUED, metadata={"order": 7}, attempts=2)
    other = MessageFactory(status=Status.SENT)
    [claimed] = transition(
        [queued.pk, other.pk],
        to_status=Status.SENDING,
        from_statuses=[Status.QUEUED],
        fields={"claim_token": token, "lease_expires_at": lease, "attempts": F("attempts") + 1},
        returning=["claim_token", "attempts", "metadata", "lease_expires_at", "recipient"],
    )
    assert claimed.pk == queued.pk
    assert (claimed.claim_token, claimed.attempts, claimed.metadata) == (token, 3, {"order": 7})
    assert (claimed.lease_expires_at, claimed.recipient) == (lease, queued.recipient)
    assert claimed.get_deferred_fields() >= {"body", "status"}  # only what was asked for was read
    assert MessageEvent.objects.filter(message=queued, to_status=Status.SENDING).count() == 1


def test_among_matches_like_in_with_one_array_parameter_on_postgresql():
    messages = [MessageFactory(status=Status.QUEUED) for _ in range(3)]
    wanted = [messages[0].pk, messages[2].pk, 10**9]
    with CaptureQueriesContext(connection) as queries:
        found = sorted(Message.objects.filter(pk_among(wanted)).values_list("pk", flat=True))
    assert found == [messages[0].pk, messages[2].pk]
    if connection.vendor == "postgresql":
        assert "= ANY(" in queries[0]["sql"]
    assert not Message.objects.filter(pk_among([])).exists()
    assert Message.objects.filter(among("recipient", [messages[1].recipient])).get() == messages[1]


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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statements are kept by shape on PostgreSQL")
def test_a_transition_of_a_shape_seen_before_reuses_its_statement_and_writes_the_same():
    from deliveries import state
    from deliveries.backends.base import SendResult
    from deliveries.sending.claims import claim_messages
    from deliveries.sending.outcomes import record_accepted_and_claim

    state._shaped_updates.clear()
    first, second = (MessageFactory.create_batch(2, status=Status.QUEUED) for _ in range(2))
    with CaptureQueriesContext(connection) as queries:
        claimed = claim_messages([m.pk for m in first], provider="twilio")
        claimed += claim_messages([m.pk for m in second], provider="twilio")
    # The claim's shape was learnt from the ORM's statement and reused: the same text, other parameters.
    updates = [query["sql"] for query in queries if 'UPDATE "deliveries_message"' in query["sql"]]
    assert len(updates) == 2 and updates[0] != updates[1]
    assert [shaped for shaped in state._shaped_updates.values() if shaped is not None]
    for message in Message.objects.filter(pk__in=[m.pk for m in first + second]):
        assert (message.status, message.attempts) == (Status.SENDING, 1)
        assert message.claim_token is not None and message.lease_expires_at is not None
    assert len({m.claim_token for m in claimed}) == 2  # one token a claim
    # The record (per-row provider ids, a claim token filter) the same way, twice.
    record_accepted_and_claim([(m, SendResult(m.pk, "twilio", f"SM{m.pk}")) for m in claimed[:2]], [])
    record_accepted_and_claim([(m, SendResult(m.pk, "twilio", f"SM{m.pk}")) for m in claimed[2:]], [])
    shapes = len([shaped for shaped in state._shaped_updates.values() if shaped is not None])
    assert shapes == 2
    for message in Message.objects.filter(pk__in=[m.pk for m in claimed]):
        assert (message.status, message.provider_message_id, message.provider) == (
            Status.SENT,
            f"SM{message.pk}",
            "twilio",
        )
        events = list(message.events.order_by("pk").values_list("from_status", "to_status"))
        assert events[-2:] == [(Status.QUEUED, Status.SENDING), (Status.SENDING, Status.SENT)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statements are kept by shape on PostgreSQL")
def test_a_shape_whose_parameters_are_not_worked_out_alike_always_goes_through_the_orm():
    from deliveries import state

    state._shaped_updates.clear()
    messages = MessageFactory.create_batch(2, status=Status.QUEUED)
    for number, message in enumerate(messages):
        # A JSON value: its adapter object compares unequal to another, so the shape is never reused.
        moved = transition([message.pk], to_status=Status.CANCELLED, fields={"metadata": {"n": number}})
        assert moved == [message.pk]
    assert list(state._shaped_updates.values()) == [None]
    assert [m.metadata for m in Message.objects.filter(pk__in=[m.pk for m in messages]).order_by("pk")] == [
        {"n": 0},
        {"n": 1},
    ]


def record_and_claim_calls(sending, review, queued, token):
    record = {
        "message_ids": [sending.pk, review.pk],
        "to_status": Status.SENT,
        "from_statuses": [Status.SENDING, Status.REVIEW],  # review: a second statement, after the first's rows
        "extra_filter": {"claim_token__in": {token}},
        "fields": {"provider": "twilio", "lease_expires_at": None},
        "per_row": {"provider_message_id": {sending.pk: "SM1", review.pk: "SM2"}},
        "events_by_id": {sending.pk: ("Accepted as SM1.", {"attempt": 1})},
        "detail": "Accepted.",
        "settle_dependents": False,
    }
    claim = {
        "message_ids": [queued.pk],
        "to_status": Status.SENDING,
        "from_statuses": [Status.QUEUED],
        "fields": {"claim_token": uuid.uuid4(), "attempts": F("attempts") + 1},
        "detail": "Handing to twilio.",
        "returning": ["claim_token", "attempts", "recipient"],
    }
    return record, claim


def test_transitions_run_together_give_and_write_what_each_gives_alone():
    token = uuid.uuid4()
    sending = MessageFactory(status=Status.SENDING, claim_token=token)
    review = MessageFactory(status=Status.REVIEW, claim_token=token)
    queued = MessageFactory(status=Status.QUEUED, attempts=1)
    record, claim = record_and_claim_calls(sending, review, queued, token)

    moved, claimed = transitions_together(record, claim)

    assert sorted(moved) == sorted([sending.pk, review.pk])
    assert [(m.pk, m.claim_token, m.attempts) for m in claimed] == [(queued.pk, claim["fields"]["claim_token"], 2)]
    rows = dict(Message.objects.values_list("pk", "provider_message_id"))
    assert (rows[sending.pk], rows[review.pk]) == ("SM1", "SM2")
    assert Message.objects.get(pk=queued.pk).status == Status.SENDING
    events = set(MessageEvent.objects.values_list("message_id", "from_status", "to_status", "detail"))
    assert events >= {
        (sending.pk, Status.SENDING, Status.SENT, "Accepted as SM1."),
        (review.pk, Status.REVIEW, Status.SENT, "Accepted."),
        (queued.pk, Status.QUEUED, Status.SENDING, "Handing to twilio."),
    }
    assert transitions_together(record, claim) == [[], []]  # nothing left to move


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_transitions_run_together_commit_together():
    if connection.vendor != "postgresql":
        pytest.skip("one pipeline, one commit: PostgreSQL's; elsewhere they run one after the other")
    token = uuid.uuid4()
    sending = MessageFactory(status=Status.SENDING, claim_token=token)
    review = MessageFactory(status=Status.REVIEW, claim_token=token)
    queued = MessageFactory(status=Status.QUEUED, attempts=0)
    record, claim = record_and_claim_calls(sending, review, queued, token)
    claim["fields"]["attempts"] = F("attempts") - 1  # breaks the attempts >= 0 check: the claim fails

    with pytest.raises(IntegrityError):
        transitions_together(record, claim)

    # The record went to the server with the claim, in one round trip and one transaction: undone with it.
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses == {sending.pk: Status.SENDING, review.pk: Status.REVIEW, queued.pk: Status.QUEUED}
    assert not MessageEvent.objects.filter(to_status__in=[Status.SENT, Status.SENDING]).exists()
    # And the connection is usable after it.
    assert transitions_together(record, {**claim, "fields": {"attempts": F("attempts") + 1}})[1][0].attempts == 1
