"""messages_create_many's extras for bulk senders: ids per item, dedupe keys, render failures, batches."""

from dataclasses import replace

import pytest

from deliveries.models import Batch, Message, Status
from deliveries.services.bulk import RenderFailure, messages_create_many
from deliveries.services.messages import message_request_validate

pytestmark = pytest.mark.django_db(transaction=True)


def item(i, *, dedupe_key=None):
    request, content = message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body=f"Hello {i}")
    return replace(request, dedupe_key=dedupe_key), content


def test_ids_come_back_in_the_order_of_the_items_across_chunks():
    result = messages_create_many(items=[item(i) for i in range(7)], chunk_size=3, collect_ids=True)
    assert len(result.ids) == 7
    assert [Message.objects.get(pk=pk).body for pk in result.ids] == [f"Hello {i}" for i in range(7)]


def test_items_whose_dedupe_key_is_stored_already_are_skipped_so_a_second_run_stores_nothing(sms_outbox):
    keys = [f"run:{i}" for i in range(5)]
    first = messages_create_many(items=[item(i, dedupe_key=k) for i, k in enumerate(keys[:3])], chunk_size=2)
    second = messages_create_many(
        items=[item(i, dedupe_key=k) for i, k in enumerate(keys)], chunk_size=2, collect_ids=True
    )
    assert (first.created, first.skipped) == (3, 0)
    assert (second.created, second.skipped) == (2, 3)
    assert second.ids[:3] == [None, None, None] and all(second.ids[3:])
    assert Message.objects.count() == 5
    assert sorted(Message.objects.values_list("dedupe_key", flat=True)) == keys


def test_the_same_dedupe_key_twice_in_one_call_is_stored_once():
    result = messages_create_many(items=[item(1, dedupe_key="k"), item(2, dedupe_key="k")])
    assert (result.created, result.skipped) == (1, 1)


def test_a_render_failure_is_stored_as_a_failed_message_with_its_reason_and_never_queued(clean_redis):
    request, _ = item(1)
    batch = Batch.objects.create(kind=Batch.Kind.API)
    result = messages_create_many(items=[(request, RenderFailure("Missing variable(s) in body: 'name'."))], batch=batch)
    assert (result.created, result.failed, result.queued) == (1, 1, 0)
    message = Message.objects.get()
    assert message.status == Status.FAILED
    assert message.batch == batch
    assert message.last_error_code == "render"
    assert "Missing variable" in message.last_error_message
    assert "Not sent: Missing variable" in message.events.get().detail
