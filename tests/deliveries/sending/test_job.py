"""A send job's messages, channel by channel: outcomes written a group at a time, dependents looked up once, and
messages taken over from waiting jobs sent with the channel they belong to."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.job_source import NextBatch
from deliveries.models import Message, MessageEvent, Status
from deliveries.sending.job import send_messages
from deliveries.services.bulk import messages_create_many
from deliveries.services.messages import message_request_validate
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _queued_sms(count: int, *, priority: str = "default") -> list[int]:
    items = (
        message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body="Hi", priority=priority)
        for i in range(count)
    )
    return messages_create_many(items=items, collect_ids=True).ids


def test_taken_messages_of_another_channel_are_sent_after_the_channel_being_sent(sms_outbox, mailoutbox, settings):
    sms = _queued_sms(3)
    email_items = (
        message_request_validate(channel="email", to=f"user{i}@example.com", subject="Hi", body="Hi") for i in range(2)
    )
    emails = messages_create_many(items=email_items, collect_ids=True).ids
    later_sms = _queued_sms(2)
    offered = [emails + later_sms, [999_999]]  # one take of both channels, then one that must never be asked for

    class Source:
        def next_batch(self) -> NextBatch:
            return NextBatch(offered.pop(0))

    assert send_messages(sms, source=Source()) == {Status.SENT: 7}
    assert offered == [[999_999]]  # after a take with another channel's messages, nothing more was taken
    assert sorted(m.id for m in sms_outbox) == sorted(sms + later_sms)
    assert len(mailoutbox) == 2


def test_a_job_records_its_results_in_a_few_statements_per_group_not_per_message(settings):
    settings.SEND_CONCURRENCY = 50
    messages = [MessageFactory(status=Status.QUEUED) for _ in range(100)]
    with CaptureQueriesContext(connection) as queries:
        assert send_messages([m.pk for m in messages]) == {Status.SENT: 100}
    assert len(queries) < 60  # per message it was seven; now a claim and a record per wave, a few per job
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    assert MessageEvent.objects.filter(to_status=Status.SENT).count() == 100


def test_a_job_releases_what_waits_for_its_messages_and_asks_no_more_for_the_others(settings):
    from deliveries.services.messages import message_create, message_request_validate

    def create(**fields):
        request, content = message_request_validate(channel="sms", to="+14155550100", body="hi", **fields)
        return message_create(request=request, content=content)

    parent, loner = create(), create()
    child = create(depends_on=parent.pk, depends_on_condition="sent")
    assert child.status == Status.WAITING
    assert send_messages([parent.pk, loner.pk]) == {Status.SENT: 2}
    child.refresh_from_db()
    assert child.status == Status.SCHEDULED
    assert child.events.last().detail.startswith(f"Released: message #{parent.pk}")

    # A job whose messages nobody waits for looks for dependents once, up front, not after each group of sends.
    settings.SEND_CONCURRENCY = 1  # one message per group: a lookup per group would show
    others = [MessageFactory(status=Status.QUEUED) for _ in range(5)]
    with CaptureQueriesContext(connection) as queries:
        send_messages([m.pk for m in others])
    waiting_lookups = [q["sql"] for q in queries.captured_queries if "'waiting'" in q["sql"] or '"waiting"' in q["sql"]]
    assert len(waiting_lookups) == 1
