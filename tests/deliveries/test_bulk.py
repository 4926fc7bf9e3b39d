import math
from datetime import timedelta

import django_rq
import pytest
from django.db import connection
from django.utils import timezone

from deliveries.models import Message, MessageEvent, Status
from deliveries.services.bulk import messages_create_many
from deliveries.services.messages import message_request_validate
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def items(count, *, send_at=None, priority="default"):
    for i in range(count):
        yield message_request_validate(
            channel="sms", to=f"+1415{7000000 + i}", body=f"Hello {i}", send_at=send_at, priority=priority
        )


def test_bulk_create_stores_every_message_with_its_event_and_queues_them_in_batches(settings, sms_outbox):
    settings.SEND_BATCH_SIZE = 50
    progress = []
    result = messages_create_many(items=items(230), chunk_size=100, on_chunk=progress.append)
    assert (result.created, result.queued, result.scheduled) == (230, 230, 0)
    assert progress == [100, 200, 230]
    assert Message.objects.filter(status=Status.QUEUED).count() == 230
    assert MessageEvent.objects.count() == 230
    # 100 + 100 + 30 rows per chunk, 50 per job: 2 + 2 + 1 jobs.
    assert django_rq.get_queue("default").count == 5

    run_burst_worker()
    assert Message.objects.filter(status=Status.SENT).count() == 230
    assert sorted(m.body for m in sms_outbox) == sorted(f"Hello {i}" for i in range(230))


def test_bulk_create_leaves_future_messages_to_the_dispatcher():
    later = timezone.now() + timedelta(hours=2)
    result = messages_create_many(items=items(20, send_at=later))
    assert (result.queued, result.scheduled) == (0, 20)
    assert django_rq.get_queue("default").count == 0
    assert not Message.objects.exclude(job_id="").exists()


def inserts_needed(model, rows: int) -> int:
    """INSERT statements bulk_create needs for `rows` rows: the backend caps parameters per statement."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    per_statement = min(1000, connection.ops.bulk_batch_size(fields, [None] * rows) or rows)
    return math.ceil(rows / per_statement)


def test_bulk_create_costs_a_few_statements_per_chunk_not_one_per_message(django_assert_max_num_queries, settings):
    settings.SEND_BATCH_SIZE = 500
    prepared = list(items(1000))
    # One transaction per chunk (begin/commit bookkeeping), then multi-row INSERTs for messages and events.
    budget = inserts_needed(Message, 1000) + inserts_needed(MessageEvent, 1000) + 4
    with django_assert_max_num_queries(budget):
        messages_create_many(items=prepared, chunk_size=1000)
    assert Message.objects.count() == 1000
    assert budget < 100
