import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.db.models import F
from django.utils import timezone

from deliveries import state
from deliveries.models import DependencyCondition, Message, MessageEvent, Status
from deliveries.services import dependencies
from deliveries.state import (
    TRANSITIONS,
    InvalidTransition,
    after_deciding_transition,
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


def test_a_held_message_is_never_sent_and_leaves_only_by_release_cancel_or_expiry():
    assert Status.SENDING not in TRANSITIONS[Status.HELD]
    assert TRANSITIONS[Status.HELD] == {
        Status.QUEUED,
        Status.SCHEDULED,
        Status.WAITING,
        Status.PAUSED,
        Status.CANCELLED,
        Status.FAILED,
    }
    # Held from any status before the provider call, never after it.
    assert set(sources_for(Status.HELD)) == {Status.SCHEDULED, Status.QUEUED, Status.SENDING}


def test_a_held_message_can_be_cancelled_by_a_person():
    from deliveries.services.messages import message_cancel

    held = MessageFactory(status=Status.HELD)
    assert message_cancel(message=held, by="ana")
    held.refresh_from_db()
    assert held.status == Status.CANCELLED


def test_a_receipt_may_overtake_the_worker_but_never_move_a_message_back():
    # Review too: a message whose worker died mid-call is settled by the provider's receipt.
    assert set(sources_for(Status.DELIVERED)) == {Status.SENDING, Status.SENT, Status.REVIEW}
    assert set(sources_for(Status.UNDELIVERED)) == {Status.SENDING, Status.SENT, Status.REVIEW}
    for final in (Status.DELIVERED, Status.UNDELIVERED, Status.SUPPRESSED, Status.CANCELLED):
        assert Status.SENT not in TRANSITIONS[final]


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


def test_the_app_registers_the_dependents_hook_when_it_is_ready():
    assert dependencies._parents_decided in state._after_deciding


def test_a_transition_settles_dependents_through_the_registered_hook_and_not_without_it(monkeypatch):
    parent = MessageFactory(status=Status.SENDING)
    child = MessageFactory(status=Status.WAITING, depends_on=parent, depends_on_condition=DependencyCondition.SENT)
    monkeypatch.setattr(state, "_after_deciding", [])
    assert transition([parent.pk], to_status=Status.SENT) == [parent.pk]
    assert Message.objects.get(pk=child.pk).status == Status.WAITING  # no hook: nobody settled it

    monkeypatch.undo()
    Message.objects.filter(pk=parent.pk).update(status=Status.SENDING)
    assert transition([parent.pk], to_status=Status.SENT) == [parent.pk]
    assert Message.objects.get(pk=child.pk).status == Status.SCHEDULED  # released by the registered hook


@pytest.mark.django_db(transaction=True)
def test_hooks_hear_once_of_the_messages_a_transition_moved_into_a_deciding_status_inside_its_transaction(
    monkeypatch,
):
    heard = []

    def hook(moved_ids):
        heard.append((sorted(moved_ids), connection.in_atomic_block))

    monkeypatch.setattr(state, "_after_deciding", [])
    assert after_deciding_transition(hook) is hook
    after_deciding_transition(hook)  # registered once
    first, second = MessageFactory.create_batch(2, status=Status.QUEUED)
    elsewhere = MessageFactory(status=Status.SENT)

    transition([first.pk, elsewhere.pk], to_status=Status.CANCELLED)
    assert heard == [([first.pk], True)]
    transition([second.pk], to_status=Status.SENDING)  # sending decides nothing
    transition([second.pk], to_status=Status.SENT, settle_dependents=False)  # the caller knows nobody waits
    transition([first.pk], to_status=Status.FAILED)  # nothing moved: it is cancelled
    assert heard == [([first.pk], True)]
