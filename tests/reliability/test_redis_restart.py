"""Redis restarted mid-run: connections drop and, with nothing kept on disk, every job and key is gone.

Runs its own redis-server on a free port, so that restarting it disturbs nobody else.
"""

import shutil
import socket
import subprocess
import time

import pytest
import redis

from deliveries.models import Status
from tests.reliability.support import queue_sms, wait_until_settled
from tests.support import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.db_neutral,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to run a private Redis"),
]


class PrivateRedis:
    def __init__(self, directory):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        wait_for(lambda: self._answers(client), timeout=10, message="the private Redis")

    @staticmethod
    def _answers(client) -> bool:
        try:
            return client.ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path, settings):
    server = PrivateRedis(tmp_path)
    server.start()
    settings.REDIS_URL = server.url
    settings.RQ_QUEUES = {name: {"URL": server.url, "DEFAULT_TIMEOUT": 300} for name in ("high", "default", "low")}
    yield server
    server.stop()


def test_redis_restarted_mid_run_every_message_still_goes_out_once(pipeline, fake_twilio, private_redis):
    count = 600
    ids = queue_sms(count)
    for _ in range(2):
        pipeline.start_worker(REDIS_URL=private_redis.url)
    pipeline.start_dispatcher(REDIS_URL=private_redis.url)

    wait_for(lambda: len(fake_twilio.received) >= 150, timeout=60, message="150 messages sent")
    private_redis.stop()  # the whole server goes, mid-run
    time.sleep(2)
    private_redis.start()  # back, empty
    try:
        settled = wait_until_settled(ids, timeout=60)
    except AssertionError:
        from tests.reliability.support import statuses

        print(statuses(ids))
        print(pipeline.output()[-6000:])
        raise

    # A provider call in flight when Redis vanished is still recorded in the database; only a worker that died
    # could leave one in doubt, and these workers survive the outage.
    assert settled == {Status.SENT: count}, settled
    per_recipient = fake_twilio.count_by_to()
    assert len(per_recipient) == count
    assert set(per_recipient.values()) == {1}
    # The workers lived through it: they waited for Redis and went back to work (no supervisor restarted them).
    output = pipeline.output()
    assert "Lost Redis at" in output
    assert "Redis is back; the worker starts again." in output


def test_jobs_an_empty_new_redis_lacks_are_queued_again_at_once_not_a_reconcile_period_later(
    pipeline, fake_twilio, private_redis
):
    # The reconciler alone would find these messages only RECONCILE_AFTER (here ten minutes) after they were
    # queued: the dispatcher's heartbeat sees another server answer and re-queues them at once.
    count = 50
    ids = queue_sms(count)
    pipeline.start_dispatcher(REDIS_URL=private_redis.url, RECONCILE_AFTER="600", DISPATCHER_HEARTBEAT_EVERY="0.5")
    time.sleep(2)  # a few beats against the first server
    private_redis.stop()  # its jobs go with it; no worker has taken any
    private_redis.start()  # back, empty
    pipeline.start_worker(REDIS_URL=private_redis.url, RECONCILE_AFTER="600")
    settled = wait_until_settled(ids, timeout=60)

    assert settled == {Status.SENT: count}, settled
    assert set(fake_twilio.count_by_to().values()) == {1}
    assert "Redis was replaced (a restart or a failover); re-queued 50 message(s)" in pipeline.output()
