"""Redis over TLS: a redis-server that speaks only TLS and asks clients for a certificate, with certificates made by
openssl for this test. A message goes API → queue → worker → fake Twilio → sent over it; a client that does not
trust the server's CA, or has no client certificate, is refused."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from deliveries.health import redis_status
from deliveries.models import Message, Status
from messaging_project.redis_connections import RedisConfig
from tests.redis_ha.conftest import needs_openssl, needs_redis_server, redis_environment, use_redis
from tests.redis_ha.servers import RedisProcess, SentinelGroup
from tests.reliability.support import queue_sms
from tests.support import run_burst_worker, run_manage, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.db_neutral, needs_redis_server, needs_openssl]


@pytest.fixture
def tls_redis(tmp_path, certificates):
    server = RedisProcess(tmp_path, "tls", certificates.server_lines(), tls=certificates.client_keywords()).start()
    yield server
    server.stop()


def tls_config(server, certificates, **changes) -> RedisConfig:
    values = {
        "url": f"rediss://127.0.0.1:{server.port}/0",
        "ssl_ca_certs": str(certificates.ca),
        "ssl_certfile": str(certificates.client_cert),
        "ssl_keyfile": str(certificates.client_key),
        **changes,
    }
    return RedisConfig(**values)


@pytest.mark.slow
def test_a_message_goes_from_the_api_through_the_queue_to_the_provider_over_tls(
    settings, tls_redis, certificates, pipeline, fake_twilio, api
):
    config = tls_config(tls_redis, certificates)
    use_redis(settings, config)
    cache.set("over-tls", "yes", 60)
    assert cache.get("over-tls") == "yes"
    # A send rate makes the worker take a slot in Redis (the limits storage) for each message, over TLS too.
    worker = pipeline.start_worker(**redis_environment(config), SMS_RATE_LIMIT="100/second")

    response = api.post("/api/v1/messages/", {"channel": "sms", "to": "+14155550123", "body": "tls"}, format="json")
    assert response.status_code == 201, response.content
    message_id = response.json()["id"]
    try:
        wait_for(lambda: Message.objects.get(pk=message_id).status == Status.SENT, timeout=60, message="the send")
    except AssertionError:
        print(pipeline.output()[-5000:])
        raise
    assert [m["to"] for m in fake_twilio.received] == ["+14155550123"]
    assert worker.poll() is None
    # What went through Redis went through this server: the queue it used, the cache key, the rate limit's keys.
    keys = {key.decode() for key in tls_redis.client().keys("*")}
    assert "over-tls" in " ".join(keys)
    assert any(key.startswith("tidings:rate") for key in keys), keys
    assert any(key.startswith("rq:") for key in keys), keys


def test_a_server_certificate_from_another_ca_is_refused(settings, tls_redis, certificates):
    config = tls_config(tls_redis, certificates, ssl_ca_certs=str(certificates.other_ca))
    use_redis(settings, config)
    status = redis_status()
    assert status["ok"] is False
    assert "certificate verify failed" in status["error"]

    worker = run_manage(
        "run_worker",
        DJANGO_SETTINGS_MODULE="messaging_project.settings.test",
        **{name: value for name, value in redis_environment(config).items() if value},
    )
    assert worker.returncode == 1
    assert "Traceback" not in worker.stderr
    [line] = worker.stderr.strip().splitlines()
    assert line.startswith(f"Redis is unreachable at rediss://127.0.0.1:{tls_redis.port}/0 (")
    assert "certificate verify failed" in line


def test_a_client_without_a_certificate_is_refused_when_the_server_asks_for_one(settings, tls_redis, certificates):
    use_redis(settings, tls_config(tls_redis, certificates, ssl_certfile="", ssl_keyfile=""))
    assert redis_status()["ok"] is False
    use_redis(settings, tls_config(tls_redis, certificates))
    assert redis_status()["ok"] is True


def test_sentinel_over_tls_finds_the_master_and_carries_a_send(settings, tmp_path, certificates, fake_twilio):
    group = SentinelGroup(tmp_path / "redis", certificates=certificates)
    try:
        # rediss:// with Sentinel: TLS to the sentinels and to the master they name, with the same certificates.
        config = RedisConfig(
            url="rediss://sentinel/0",
            sentinels=group.addresses,
            sentinel_master=group.master_name,
            ssl_ca_certs=str(certificates.ca),
            ssl_certfile=str(certificates.client_cert),
            ssl_keyfile=str(certificates.client_key),
        )
        use_redis(settings, config)
        assert redis_status()["ok"] is True
        cache.set("over-sentinel-tls", "yes", 60)
        assert cache.get("over-sentinel-tls") == "yes"
        [message_id] = queue_sms(1)
        run_burst_worker()
        assert Message.objects.get(pk=message_id).status == Status.SENT
        assert len(fake_twilio.received) == 1
        assert group.master.client().llen("rq:queue:default") == 0
        assert group.master.client().exists("rq:queues")
    finally:
        group.stop()
