"""A transition's statement kept as text by shape: reused only where it writes what the ORM's would."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.backends.base import SendResult
from deliveries.db.shaped_updates import shaped_updates_forget, shaped_updates_learnt
from deliveries.models import Message, Status
from deliveries.sending.claims import claim_messages
from deliveries.sending.outcomes import record_accepted_and_claim
from deliveries.state import transition
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statements are kept by shape on PostgreSQL")
def test_a_transition_of_a_shape_seen_before_reuses_its_statement_and_writes_the_same():
    shaped_updates_forget()
    first, second = (MessageFactory.create_batch(2, status=Status.QUEUED) for _ in range(2))
    with CaptureQueriesContext(connection) as queries:
        claimed = claim_messages([m.pk for m in first], provider="twilio")
        claimed += claim_messages([m.pk for m in second], provider="twilio")
    # The claim's shape was learnt from the ORM's statement and reused: the same text, other parameters.
    updates = [query["sql"] for query in queries if 'UPDATE "deliveries_message"' in query["sql"]]
    assert len(updates) == 2 and updates[0] != updates[1]
    assert [shaped for shaped in shaped_updates_learnt() if shaped is not None]
    for message in Message.objects.filter(pk__in=[m.pk for m in first + second]):
        assert (message.status, message.attempts) == (Status.SENDING, 1)
        assert message.claim_token is not None and message.lease_expires_at is not None
    assert len({m.claim_token for m in claimed}) == 2  # one token a claim
    # The record (per-row provider ids, a claim token filter) the same way, twice.
    record_accepted_and_claim([(m, SendResult(m.pk, "twilio", f"SM{m.pk}")) for m in claimed[:2]], [])
    record_accepted_and_claim([(m, SendResult(m.pk, "twilio", f"SM{m.pk}")) for m in claimed[2:]], [])
    shapes = len([shaped for shaped in shaped_updates_learnt() if shaped is not None])
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
    shaped_updates_forget()
    messages = MessageFactory.create_batch(2, status=Status.QUEUED)
    for number, message in enumerate(messages):
        # A JSON value: its adapter object compares unequal to another, so the shape is never reused.
        moved = transition([message.pk], to_status=Status.CANCELLED, fields={"metadata": {"n": number}})
        assert moved == [message.pk]
    assert list(shaped_updates_learnt()) == [None]
    assert [m.metadata for m in Message.objects.filter(pk__in=[m.pk for m in messages]).order_by("pk")] == [
        {"n": 0},
        {"n": 1},
    ]
