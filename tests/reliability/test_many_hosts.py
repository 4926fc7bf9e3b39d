"""Workers on several hosts: 20,000 SMS sent by workers on 1, then 2, then 4 hosts, one host killed mid-run.

Each host is a network namespace with its own address, reaching PostgreSQL (through a forwarder), a Redis server
of the test's own and the fake Twilio over its own veth link (benchmarks/host_cluster.py); where namespaces cannot
be made, each host is a process group with connections of its own, and the output says which ran. The rates are
printed, never asserted: the machine is shared and slow. What is asserted is the promise of docs/reliability.md:
every message reaches the provider exactly once, counted by our message id at the fake, after a person settles
the messages the dead host left in `review` as docs/operations.md says.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.db import connection

from benchmarks.host_cluster import Cluster, free_port
from benchmarks.many_hosts import HOST_COUNTS, rate_per_s
from deliveries.models import Message, Status
from deliveries.services.bulk import messages_create_many
from deliveries.services.messages import message_request_validate
from fake_providers.twilio import FakeTwilio
from tests.reliability.support import settle_reviews_as_an_operator, wait_until_settled
from tests.support import ROOT, process_env, provider_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# 4,000 on one host, 6,000 on two, 10,000 on four (one of which dies): 20,000 in all.
MESSAGES = {1: 4000, 2: 6000, 4: 10000}
WORKER_SETTINGS = {
    "SEND_LEASE_SECONDS": "10",  # a dead host's calls in flight go to review this soon
    "TWILIO_TIMEOUT": "8",  # under the lease: a live host's slow call times out (and is retried), never in review
    "RECONCILE_AFTER": "3",  # the dead host's queued messages go back on the queue this soon
    "LOG_LEVEL": "WARNING",
}


@pytest.fixture
def cluster(tmp_path, settings):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: 20,000 messages and five processes writing at once")
    with Cluster(max(HOST_COUNTS), log_dir=tmp_path) as running:
        # This process queues the messages (and the operator's resends) on the cluster's Redis, as the hosts read it.
        settings.RQ_QUEUES = {name: {"URL": running.redis_url} for name in ("high", "default", "low")}
        yield running


@pytest.fixture
def fake(cluster):
    fake = FakeTwilio(latency=0.05, outcome="none")  # latency as the benchmarks; no status callbacks to post
    fake.start(free_port(), cluster.service_addresses)
    yield fake
    fake.stop()


def queue_messages(first: int, count: int) -> list[int]:
    """`count` SMS, stored and queued as send_bulk stores them, to numbers of their own."""
    items = (
        message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body=f"Many hosts {i}")
        for i in range(first, first + count)
    )
    return messages_create_many(items=items, chunk_size=2000, collect_ids=True).ids


def message_ids_received(fake: FakeTwilio) -> Counter[int]:
    """How many times the fake received each of our messages, by the id in its status callback URL."""
    return Counter(int(parse_qs(urlsplit(m["status_callback"]).query)["message"][0]) for m in fake.received)


def wait_for_requests(fake: FakeTwilio, count: int) -> None:
    """Until the fake has answered `count` messages in all (its cheap request count first: `received` copies)."""
    wait_for(lambda: fake.request_count >= count, timeout=90, interval=0.1, message=f"{count:,} provider requests")
    wait_for(lambda: len(fake.received) >= count, timeout=10, interval=0.1, message="their answers")


def kill_mid_phase(cluster: Cluster, fake: FakeTwilio, *, seen: int, phase: list[int]) -> tuple[float, str]:
    """Kill the last host while all of them send: once 40 % of the phase is out and that host has calls in flight
    (it has claimed messages, and some message is `sending`). Returns when, and what to print."""
    victim = cluster.hosts[-1]
    claimed_before = cluster.forwarder.snapshot()[victim.name].statements

    def victim_busy() -> bool:
        return (
            fake.request_count - seen >= 0.4 * len(phase)
            and cluster.forwarder.snapshot()[victim.name].statements > claimed_before
            and Message.objects.filter(status=Status.SENDING).exists()
        )

    wait_for(victim_busy, timeout=90, interval=0.02, message=f"{victim.name} sending among the others")
    processes = cluster.network.kill(victim)
    return time.time(), f"; {victim.name} SIGKILLed ({processes} processes) after {fake.request_count - seen:,}"


def test_workers_on_four_hosts_send_20000_messages_once_each_though_one_host_dies(cluster, fake, capsys):
    database = connection.settings_dict
    base_env = process_env(**provider_env(fake), **WORKER_SETTINGS)
    port = fake.server.port
    envs = {host.name: cluster.host_env(host, base_env, database=database, twilio_port=port) for host in cluster.hosts}
    # The dispatcher (its reconciler settles what the dead host left) runs on the machine itself, which lives.
    with open(cluster.log_dir / "dispatcher.log", "w") as log:
        dispatcher = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_dispatcher"],
            cwd=ROOT,
            env={**base_env, "REDIS_URL": cluster.redis_url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ids: list[int] = []
    lines = [f"hosts are {cluster.mode}"]
    try:
        for hosts in HOST_COUNTS:
            for host in cluster.hosts[len(cluster.running_hosts()) : hosts]:
                cluster.start_worker(host, envs[host.name])
            cluster.wait_for_workers(hosts)
            seen, before = fake.request_count, cluster.costs_snapshot()
            phase = queue_messages(len(ids), MESSAGES[hosts])
            ids += phase
            if hosts < max(HOST_COUNTS):
                wait_for_requests(fake, len(ids))
                ended, note = time.time(), ""
            else:
                ended, note = kill_mid_phase(cluster, fake, seen=seen, phase=phase)
                after_kill = wait_until_settled(ids, timeout=60)
                received = message_ids_received(fake)
                found, resent = settle_reviews_as_an_operator(
                    ids, reached_provider=lambda m, seen=received: seen[m.pk] > 0
                )
                final = wait_until_settled(ids, timeout=60)
                note += (
                    f"\n    then {after_kill[Status.REVIEW]} in review: {found} had reached the provider (marked "
                    f"sent), {resent} had not (sent again); costs below include the recovery"
                )
            times = [m["received_at"] for m in fake.received[seen:] if m["received_at"] < ended]
            costs = cluster.costs_since(before, len(phase))
            lines.append(
                f"{hosts} host(s): {rate_per_s(times):,.0f} messages/s over {len(times):,}{note}\n    "
                + ", ".join(f"{key} {value}" for key, value in costs.items())
            )
    finally:
        with capsys.disabled():
            print("\nmany hosts: " + "\n  ".join(lines))
        dispatcher.terminate()
        dispatcher.wait(15)

    assert final == {Status.SENT: sum(MESSAGES.values())}
    received = message_ids_received(fake)
    assert set(received) == set(ids), f"{len(set(ids) - set(received))} never reached the provider"
    twice = {pk: n for pk, n in received.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    assert after_kill[Status.REVIEW] <= settings.SEND_CONCURRENCY  # only the dead host's calls in flight
    logs = "".join(log.read_text() for log in sorted(cluster.log_dir.glob("*.log")) if log.name != "redis.log")
    assert "Traceback" not in logs, logs[-5000:]
