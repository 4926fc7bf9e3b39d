"""Outcomes recorded: accepted calls of several claims written together, each with its own provider id."""

import uuid

import pytest

from deliveries.backends.base import SendResult
from deliveries.models import Message, Status
from deliveries.sending.claims import claim_messages
from deliveries.sending.outcomes import record_accepted_and_claim
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_accepted_calls_from_several_claims_are_recorded_together_each_with_its_own_id_and_event():
    messages = [MessageFactory(status=Status.QUEUED) for _ in range(4)]
    claimed = claim_messages([m.pk for m in messages[:2]]) + claim_messages([m.pk for m in messages[2:]])
    assert len({m.claim_token for m in claimed}) == 2  # two waves, two tokens
    # Another worker took the last one over meanwhile (its token changed): that row is not ours to settle.
    Message.objects.filter(pk=claimed[3].pk).update(claim_token=uuid.uuid4())
    results = [(m, SendResult(message_id=m.pk, provider="twilio", provider_message_id=f"SM{m.pk}")) for m in claimed]

    moved, claimed_now = record_accepted_and_claim(results, [])
    assert claimed_now == []

    assert sorted(moved) == [m.pk for m in claimed[:3]]
    for message in claimed[:3]:
        message.refresh_from_db()
        assert message.status == Status.SENT
        assert message.provider_message_id == f"SM{message.pk}"
        event = message.events.get(to_status=Status.SENT)
        assert event.detail == f"Attempt 1 of 5: Accepted by twilio as SM{message.pk}."
    assert Message.objects.get(pk=claimed[3].pk).status == Status.SENDING
