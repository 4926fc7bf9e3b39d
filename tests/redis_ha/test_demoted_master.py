"""A master demoted to a replica while workers use it: READONLY and the like mean "Redis lost, find the master
again", never a worker that quits.

With Sentinel, a planned failover (`SENTINEL FAILOVER`, as managed Redis services do for maintenance): the old master
lives on as a replica and drops its clients; they find the new master through the sentinels. With a plain REDIS_URL
whose name moves to the new master (DNS-based failover), the address can answer as a read-only replica for a while:
the worker waits until it takes writes again."""

from __future__ import annotations

import time

import pytest

from deliveries.models import Status
from messaging_project.redis_connections import RedisConfig
from tests.redis_ha.conftest import needs_redis_server, redis_environment, use_redis
from tests.redis_ha.servers import RedisProcess
from tests.reliability.support import queue_sms, wait_until_settled
from tests.support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.db_neutral, needs_redis_server]


def test_a_planned_failover_demotes_the_master_and_the_same_worker_goes_on_with_the_new_one(
    settings, sentinel_group, pipeline, fake_twilio
):
    group = sentinel_group
    config = RedisConfig(url="redis://sentinel/0", sentinels=group.addresses, sentinel_master=group.master_name)
    use_redis(settings, config)
    environment = redis_environment(config)
    worker = pipeline.start_worker(**environment)
    dispatcher = pipeline.start_dispatcher(**environment)
    first = queue_sms(20)
    assert wait_until_settled(first, timeout=60) == {Status.SENT: 20}

    old_port = sentinel_group.master.port
    sentinel_group.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", sentinel_group.master_name)
    wait_for(lambda: sentinel_group.master_port() == sentinel_group.replica.port, timeout=60, message="a new master")
    # The old master is a replica now, and answers: writes to it are refused (READONLY).
    wait_for(
        lambda: sentinel_group.master.client().info("replication")["role"] == "slave",
        timeout=30,
        message="the old master to become a replica",
    )

    second = queue_sms(20, recipients=[f"+1415600{i:04d}" for i in range(20)])
    try:
        assert wait_until_settled(second, timeout=60) == {Status.SENT: 20}
    except AssertionError:
        print(pipeline.output()[-6000:])
        raise
    assert worker.poll() is None and dispatcher.poll() is None, pipeline.output()[-5000:]
    assert sentinel_group.master_port() != old_port
    assert sorted(fake_twilio.count_by_to().values()) == [1] * 40


def test_a_worker_pointed_at_a_read_only_replica_waits_for_it_to_take_writes_instead_of_quitting(
    settings, tmp_path, pipeline, fake_twilio
):
    master = RedisProcess(tmp_path, "master", []).start()
    replica = RedisProcess(tmp_path, "replica", [f"replicaof 127.0.0.1 {master.port}"]).start()
    try:
        config = RedisConfig(url=f"redis://127.0.0.1:{replica.port}/0?socket_connect_timeout=1")
        worker = pipeline.start_worker(**redis_environment(config))
        wait_for(lambda: "read only replica" in pipeline.output(), timeout=30, message="the worker to be refused")
        time.sleep(3)  # long enough to have quit or to be starting again and again
        assert worker.poll() is None, pipeline.output()[-5000:]
        assert pipeline.output().count("Lost Redis at") == 1, pipeline.output()[-5000:]

        replica.client().execute_command("REPLICAOF", "NO", "ONE")  # the failover reaches this address
        use_redis(settings, config)
        ids = queue_sms(10)
        try:
            assert wait_until_settled(ids, timeout=60) == {Status.SENT: 10}
        except AssertionError:
            print(pipeline.output()[-6000:])
            raise
        assert worker.poll() is None
        assert "Redis is back; the worker starts again." in pipeline.output()
    finally:
        replica.stop()
        master.stop()
