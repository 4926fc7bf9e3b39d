"""What each library is given for a plain REDIS_URL, a rediss:// one and Sentinel, and what `manage.py check` says
about a half configuration. No server needed: the servers are in the failover and TLS tests."""

from __future__ import annotations

import pytest
from django.conf import settings
from redis.connection import SSLConnection

from messaging_project.redis_connections import RedisConfig, shared_client
from tests.support import run_manage

PLAIN = "redis://:s3cret@cache.internal:6380/2?socket_connect_timeout=3"


def test_the_default_path_gives_the_libraries_redis_url_as_it_always_did():
    config = RedisConfig.from_settings(settings)
    assert not config.uses_sentinel and not config.uses_tls
    assert settings.RQ_QUEUES["default"]["URL"] == config.client_url()
    assert settings.CACHES["default"]["LOCATION"] == config.client_url()
    assert set(settings.RQ_QUEUES["default"]) == {"URL", "DEFAULT_TIMEOUT"}
    assert config.client_url() == settings.REDIS_URL  # nothing added: no option, no extra round trip


def test_a_plain_url_is_described_without_its_password():
    assert RedisConfig(url=PLAIN).describe() == "redis://***@cache.internal:6380/2"


def test_rediss_carries_the_certificates_to_every_library_in_the_url_and_always_verifies(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-")
    config = RedisConfig(url="rediss://redis.internal:6379/0", ssl_ca_certs=str(ca))
    url = config.client_url()
    assert f"ssl_ca_certs={str(ca).replace('/', '%2F')}" in url
    assert "ssl_cert_reqs=required" in url
    assert config.rq_queue(DEFAULT_TIMEOUT=300) == {"URL": url, "DEFAULT_TIMEOUT": 300}
    assert config.cache()["LOCATION"] == url
    assert config.problems() == []


def test_sentinel_takes_credentials_and_db_from_redis_url_and_the_address_from_the_sentinels(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-")
    config = RedisConfig(
        url="rediss://app:pa%40ss@ignored:1/4",
        sentinels="10.0.0.1:26379, 10.0.0.2:26379,[::1]:26380",
        sentinel_master="tidings",
        sentinel_password="sentinel-secret",
        ssl_ca_certs=str(ca),
    )
    assert config.uses_sentinel and config.problems() == []
    queue = config.rq_queue(DEFAULT_TIMEOUT=300)
    assert queue["SENTINELS"] == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)]
    assert (queue["MASTER_NAME"], queue["DB"], queue["USERNAME"], queue["PASSWORD"]) == ("tidings", 4, "app", "pa@ss")
    assert issubclass(queue["CONNECTION_KWARGS"]["connection_class"], SSLConnection)
    assert queue["CONNECTION_KWARGS"]["ssl_ca_certs"] == str(ca)
    assert queue["SENTINEL_KWARGS"]["password"] == "sentinel-secret"
    assert queue["SENTINEL_KWARGS"]["ssl"] is True
    assert "URL" not in queue

    cache = config.cache()
    assert cache["LOCATION"] == "redis://app:pa%40ss@tidings/4"
    assert cache["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.SentinelClient"
    assert cache["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert issubclass(cache["OPTIONS"]["CONNECTION_POOL_KWARGS"]["connection_class"], SSLConnection)
    assert cache["OPTIONS"]["SENTINEL_KWARGS"]["password"] == "sentinel-secret"
    assert config.describe() == "Sentinel master 'tidings' (sentinels 10.0.0.1:26379,10.0.0.2:26379,::1:26380, db 4)"


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"sentinels": "10.0.0.1:26379"}, "REDIS_SENTINELS is set without REDIS_SENTINEL_MASTER"),
        ({"sentinel_master": "tidings"}, "REDIS_SENTINEL_MASTER or REDIS_SENTINEL_PASSWORD is set but"),
        ({"sentinels": "10.0.0.1", "sentinel_master": "m"}, "is not a list of host:port"),
        ({"ssl_ca_certs": "/etc/ssl/certs"}, "set, but REDIS_URL is not rediss://"),
        ({"url": "rediss://r:6379/0", "ssl_ca_certs": "/nowhere/ca.pem"}, "is not a readable file"),
        ({"url": "rediss://r:6379/0", "ssl_keyfile": "/etc/hostname"}, "REDIS_SSL_KEYFILE is set without"),
        ({"url": "http://r:6379/0"}, "REDIS_URL has the scheme 'http'"),
    ],
)
def test_a_half_configuration_is_named(changes, said):
    problems = RedisConfig(**{"url": "redis://r:6379/0", **changes}).problems()
    assert any(said in problem for problem, _hint in problems), problems


def test_manage_py_check_refuses_a_half_configuration_in_plain_lines():
    result = run_manage(
        "check",
        DJANGO_SETTINGS_MODULE="messaging_project.settings.test",
        REDIS_SENTINELS="10.0.0.1:26379,10.0.0.2:26379",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "(tidings.E060) REDIS_SENTINELS is set without REDIS_SENTINEL_MASTER" in result.stderr
    assert "HINT: Set REDIS_SENTINEL_MASTER to the name the sentinels monitor" in result.stderr


def test_the_shared_client_is_made_once_per_configuration():
    config = RedisConfig.from_settings(settings)
    assert shared_client(config) is shared_client(RedisConfig.from_settings(settings))
    assert shared_client(config) is not shared_client(RedisConfig(url=PLAIN))
