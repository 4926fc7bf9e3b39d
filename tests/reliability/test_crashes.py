"""Crashes and lost state: a worker SIGKILLed mid-run, Redis flushed mid-run, SIGTERM to a busy worker.

Each scenario runs real worker and dispatcher processes against the real Redis, the test database and the fake
Twilio, and counts what the fake received: every message exactly once, none left waiting.
"""

import os
import signal

import pytest

from deliveries.models import Status
from tests.reliability.support import (
    children_of,
    queue_sms,
    settle_reviews_as_an_operator,
    statuses,
    wait_until_settled,
)
from tests.support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def assert_each_received_once(fake_twilio, count):
    per_recipient = fake_twilio.count_by_to()
    assert len(per_recipient) == count, f"{count - len(per_recipient)} message(s) never reached the provider"
    twice = {to: n for to, n in per_recipient.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"


def test_a_worker_killed_mid_run_and_restarted_loses_nothing_and_sends_nothing_twice(pipeline, fake_twilio):
    count = 1000
    fake_twilio.latency = 0.02  # so that the kill finds provider calls in flight
    ids = queue_sms(count)
    victim = pipeline.start_worker()
    pipeline.start_dispatcher()

    # The victim works alone, so a message in `sending` means the kill lands during its provider calls.
    wait_for(
        lambda: len(fake_twilio.received) >= 300 and statuses(ids)[Status.SENDING] > 0,
        timeout=60,
        interval=0.01,
        message="300 messages sent and more in flight",
    )
    pipeline.kill(victim)
    pipeline.start_worker()
    pipeline.start_worker()
    after_kill = wait_until_settled(ids, timeout=90)

    # Only the calls in flight at the kill are in doubt: at most SEND_CONCURRENCY of them. The messages the
    # killed job had not reached yet were still `queued` and went out through the reconciler.
    in_review = after_kill[Status.REVIEW]
    assert in_review <= 8, after_kill
    received = fake_twilio.count_by_to()
    found, resent = settle_reviews_as_an_operator(ids, reached_provider=lambda m: received[m.recipient] > 0)
    final = wait_until_settled(ids, timeout=30)
    print(f"\nkill: {in_review} message(s) needed review: {found} had reached the provider, {resent} had not")

    assert final == {Status.SENT: count}
    assert_each_received_once(fake_twilio, count)
    pipeline.assert_no_tracebacks()


def test_redis_flushed_mid_run_every_message_still_goes_out_once(pipeline, fake_twilio, clean_redis):
    count = 1000
    ids = queue_sms(count)
    pipeline.start_worker()
    pipeline.start_worker()
    pipeline.start_dispatcher()

    wait_for(lambda: len(fake_twilio.received) >= 300, timeout=60, message="300 messages sent")
    clean_redis.flushdb()  # every queued job, the workers' registrations, the breaker and the rate windows: gone
    settled = wait_until_settled(ids, timeout=90)

    assert settled == {Status.SENT: count}
    assert_each_received_once(fake_twilio, count)
    pipeline.assert_no_tracebacks()


def test_sigterm_lets_a_busy_worker_finish_its_job_and_leaves_nothing_sending(pipeline, fake_twilio):
    count = 200
    fake_twilio.latency = 0.2  # a job of 20 at 4 calls at a time takes about a second
    ids = queue_sms(count)
    worker = pipeline.start_worker(SEND_CONCURRENCY="4")
    wait_for(lambda: statuses(ids)[Status.SENDING] > 0, timeout=30, message="the worker to be mid-job")

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    after_stop = statuses(ids)
    assert after_stop[Status.SENDING] == 0, after_stop
    assert after_stop[Status.SENT] == len(fake_twilio.received) > 0
    assert after_stop[Status.SENT] + after_stop[Status.QUEUED] == count, after_stop

    # The rest wait, queued, for the next worker.
    pipeline.start_worker()
    assert wait_until_settled(ids, timeout=60) == {Status.SENT: count}
    assert_each_received_once(fake_twilio, count)
    pipeline.assert_no_tracebacks()


def test_sigterm_to_every_process_of_a_busy_worker_stops_it_after_the_calls_in_flight(pipeline, fake_twilio):
    """As systemd or Heroku do: the work horse running the job gets SIGTERM too, not only the worker."""
    count = 200
    fake_twilio.latency = 0.2
    ids = queue_sms(count)
    worker = pipeline.start_worker(SEND_CONCURRENCY="4")
    wait_for(lambda: statuses(ids)[Status.SENDING] > 0, timeout=30, message="the worker to be mid-job")
    horses = children_of(worker.pid)
    assert horses, "the job runs in a forked work horse"

    for pid in [worker.pid, *horses]:
        os.kill(pid, signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    after_stop = statuses(ids)
    assert after_stop[Status.SENDING] == 0, after_stop
    assert after_stop[Status.SENT] == len(fake_twilio.received) < 20  # it stopped inside its first job
    assert after_stop[Status.SENT] + after_stop[Status.QUEUED] == count, after_stop

    # The stopped job's unsent messages have no job any more: the reconciler queues them again.
    pipeline.start_worker()
    pipeline.start_dispatcher()
    assert wait_until_settled(ids, timeout=60) == {Status.SENT: count}
    assert_each_received_once(fake_twilio, count)
    pipeline.assert_no_tracebacks()
