"""A send job that loses its database connection in the middle, as a PostgreSQL restart or failover ends it (the
server terminates it while calls are in flight): the answers of those calls are written once the database answers
again and the job goes on with its other messages. No dispatcher runs here, so nothing is left to the reconciler,
and nothing waits in review for a person. Real worker process, real PostgreSQL, the fake Twilio."""

import pytest
from django.db import connection

from deliveries.models import Message, Status
from tests.reliability.support import queue_sms
from tests.support import process_env, provider_env, start_manage, stop, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates PostgreSQL connections"),
]


def terminate_other_connections() -> int:
    """End every other session on the test database, as the server does when it shuts down."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_calls_in_flight_when_the_database_connection_is_lost_are_written_and_the_job_goes_on(fake_twilio):
    fake_twilio.latency = 1.0  # every call in flight for a second: the connection ends under them
    ids = queue_sms(40, batch_size=40)  # one job, sent ten calls at a time
    worker = start_manage("run_worker", env=process_env(**provider_env(fake_twilio), SEND_CONCURRENCY="10"))
    try:
        wait_for(lambda: fake_twilio.received, timeout=30, message="the first calls in flight")
        assert terminate_other_connections() >= 1
        wait_for(
            lambda: Message.objects.filter(pk__in=ids, status=Status.SENT).count() == 40,
            timeout=60,
            interval=0.2,
            message="all 40 sent",
        )
    finally:
        output = stop(worker)
    assert "Lost the database while" in output, output
    assert not Message.objects.filter(status__in=[Status.REVIEW, Status.SENDING, Status.FAILED]).exists()
    assert sorted(fake_twilio.count_by_to().values()) == [1] * 40  # each sent once
