"""The cheap parts of the send path: per-row values in one UPDATE, events in one INSERT, the breaker told about
calls made outside it, and the async Twilio client behind the same interface (results recorded a group at a time:
tests/deliveries/sending/)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.backends import get_backend
from deliveries.backends.base import OutgoingMessage
from deliveries.backends.email.django_mail import EmailBackend, settle_proxies
from deliveries.circuit_breakers import ProviderBreaker, _redis
from deliveries.db.events import events_insert
from deliveries.db.updates import update_returning_ids
from deliveries.exceptions import PermanentDeliveryError, TransientDeliveryError
from deliveries.models import Message, MessageEvent, Status
from deliveries.sending.call_pool import CallPool
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_per_row_values_are_written_in_one_update_and_only_to_the_rows_the_filter_keeps():
    first, second, other = (MessageFactory(status=Status.SENDING) for _ in range(3))
    kept = Message.objects.filter(pk__in=[first.pk, second.pk, other.pk], status=Status.SENDING).exclude(pk=other.pk)
    with CaptureQueriesContext(connection) as queries:
        moved = update_returning_ids(
            kept,
            {"status": Status.SENT},
            per_row={"provider_message_id": {first.pk: "SM-first", second.pk: "SM-second", other.pk: "SM-other"}},
        )
    assert sorted(moved) == [first.pk, second.pk]
    assert len(queries) == 1
    rows = dict(Message.objects.values_list("pk", "provider_message_id"))
    assert rows == {first.pk: "SM-first", second.pk: "SM-second", other.pk: ""}
    assert Message.objects.get(pk=other.pk).status == Status.SENDING


def test_events_are_inserted_in_one_statement_with_their_data():
    messages = [MessageFactory() for _ in range(3)]
    now = timezone.now()
    rows = [
        (m.pk, "status", "queued", "sending", "", f"Detail {i}", {"attempt": i, "note": "é"})
        for i, m in enumerate(messages)
    ]
    with CaptureQueriesContext(connection) as queries:
        events_insert(rows, created_at=now)
    assert len(queries) == 1
    stored = list(MessageEvent.objects.filter(message__in=messages).order_by("message_id"))
    assert [(e.message_id, e.detail, e.data) for e in stored] == [
        (m.pk, f"Detail {i}", {"attempt": i, "note": "é"}) for i, m in enumerate(messages)
    ]
    assert {e.created_at for e in stored} == {now}
    assert {(e.from_status, e.to_status, e.dedupe_key) for e in stored} == {("queued", "sending", "")}


def test_the_breaker_writes_nothing_while_all_is_well_and_opens_on_replayed_failures(settings):
    settings.BREAKER_FAIL_MAX = 3
    breaker = ProviderBreaker("twilio")
    breaker.reset()
    assert breaker.admit() == (True, None, False)
    breaker.record([None, None, PermanentDeliveryError("bad number")])  # a permanent error proves it is up
    assert not list(_redis().scan_iter(f"{breaker.namespace}:*"))

    assert breaker.admit() == (True, None, False)
    breaker.record([TransientDeliveryError("500"), TransientDeliveryError("500")])
    assert breaker.status().failures == 2
    assert breaker.admit() == (True, None, False)
    breaker.record([None])  # a success in between: the failures were not consecutive
    assert breaker.status().failures == 0
    breaker.admit()
    breaker.record([TransientDeliveryError("500")] * 3)
    assert breaker.status().state == "open"
    assert breaker.admit()[0] is False


def outgoing(pk: int, to: str = "+14155550100") -> OutgoingMessage:
    return OutgoingMessage(id=pk, channel="sms", recipient=to, body=f"Hello {pk}")


def test_the_async_twilio_client_sends_through_the_call_pool_and_maps_errors(fake_twilio):
    backend = get_backend("sms")
    assert backend.supports_async
    with CallPool(backend, size=10) as pool:
        pool.start([(pk, outgoing(pk)) for pk in range(1, 21)])
        pool.start([(99, outgoing(99, to="+15005550001"))])  # the fake's invalid number
        by_key = {}
        while len(by_key) < 21:
            finished = pool.results(timeout=10)
            assert finished, "a call did not come back"
            by_key.update(finished)
    results = [by_key[pk] for pk in range(1, 21)]
    refusal = by_key[99]
    assert all(by_key[pk].message_id == pk for pk in by_key)
    assert all(result.ok and result.provider_message_id.startswith("SM") for result in results)
    assert len({result.provider_message_id for result in results}) == 20
    assert isinstance(refusal.error, PermanentDeliveryError)
    assert refusal.error.code == "21211"
    assert fake_twilio.count_by_to()["+14155550100"] == 20


def test_an_unreachable_twilio_is_a_transient_error_from_the_async_client(fake_twilio, settings):
    fake_twilio.down = True
    with CallPool(get_backend("sms"), size=2) as pool:
        pool.start([(1, outgoing(1))])
        [(key, result)] = pool.results(timeout=10)
    assert key == 1
    assert isinstance(result.error, TransientDeliveryError)


def test_anymail_connections_stay_open_for_the_batch_and_read_proxies_once(fake_postmark, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    backend = EmailBackend()
    first = backend._connection()
    assert backend._connection() is first  # one per thread, reused
    assert first.session is not None  # opened: anymail keeps one HTTP session for every email
    assert first.session.trust_env is False
    assert first.session.proxies["http"] == "http://proxy.example:3128"
    backend.close()
    assert first.session is None


def test_settle_proxies_leaves_backends_without_an_http_session_alone():
    class Plain:
        pass

    settle_proxies(Plain())  # nothing to do, and no error


def test_per_row_text_values_reach_the_rows_exactly_whatever_their_characters():
    odd = [
        "plain",
        "",
        'a "quoted", {braced} one',
        'back\\slash \\" both',
        "NULL",
        " spaced ",
        "caf\u00e9 \u2014 \U0001f600",
    ]
    messages = [MessageFactory(status=Status.SENDING) for _ in odd]
    moved = update_returning_ids(
        Message.objects.filter(pk__in=[m.pk for m in messages]),
        {"status": Status.SENT},
        per_row={"provider_message_id": {m.pk: value for m, value in zip(messages, odd, strict=True)}},
    )
    assert sorted(moved) == sorted(m.pk for m in messages)
    stored = dict(Message.objects.filter(pk__in=moved).values_list("pk", "provider_message_id"))
    assert [stored[m.pk] for m in messages] == odd
