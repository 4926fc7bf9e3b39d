"""Fixtures for the Redis failover and TLS tests: real servers, and this process and the ones it starts pointed at
them through the same settings an operator would set."""

from __future__ import annotations

import shutil

import pytest

from messaging_project.redis_connections import RedisConfig
from tests.redis_ha.servers import Certificates, SentinelGroup

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server (make redis-servers installs it)"
)
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (make redis-servers)")


def redis_environment(config: RedisConfig) -> dict[str, str]:
    """The environment variables that configure `config`, for the worker and dispatcher processes."""
    return {
        "REDIS_URL": config.url,
        "REDIS_SENTINELS": config.sentinels,
        "REDIS_SENTINEL_MASTER": config.sentinel_master,
        "REDIS_SENTINEL_PASSWORD": config.sentinel_password,
        "REDIS_SSL_CA_CERTS": config.ssl_ca_certs,
        "REDIS_SSL_CERTFILE": config.ssl_certfile,
        "REDIS_SSL_KEYFILE": config.ssl_keyfile,
    }


def use_redis(settings, config: RedisConfig) -> None:
    """Point this process at `config` as the settings module would have: the settings and what is built from them."""
    for name, value in redis_environment(config).items():
        setattr(settings, name, value)
    settings.CACHES = {"default": config.cache()}
    settings.RQ_QUEUES = {name: config.rq_queue(DEFAULT_TIMEOUT=300) for name in ("high", "default", "low")}


@pytest.fixture
def sentinel_group(tmp_path):
    group = SentinelGroup(tmp_path / "redis")
    yield group
    group.stop()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory):
    return Certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture
def pipeline(fake_twilio, tmp_path):
    """Worker and dispatcher processes (tests/reliability's), every one stopped even when the test fails."""
    from tests.reliability.support import Pipeline

    running = Pipeline(fake_twilio, log_dir=tmp_path)
    yield running
    running.stop_all()
