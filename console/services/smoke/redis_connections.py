"""The smoke test's checks of every Redis connection Tidings makes: the queues' (django-rq), the cache's
(django-redis), the send and API rate limits' (limits), the circuit breakers' (pybreaker).

Each connection is taken from the module that uses it, so the check sees what that code sees: a Sentinel or TLS
setting that one of them missed shows as its own failing line. Each line names where the connection goes (host and
database, local or remote, Sentinel master and sentinels, TLS and what verifies the certificate) and proves it with
a write, which a read-only replica refuses.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
import time
from collections.abc import Callable
from typing import Any

import django_rq
from django.conf import settings
from redis import Redis
from redis.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import AuthenticationError, ReadOnlyError, RedisError, ResponseError
from redis.sentinel import MasterNotFoundError, SentinelConnectionPool

from .results import CheckResult, one_line

PROBE_KEY = "tidings:smoke-test:probe"
# Queue options that do not change the connection.
QUEUE_OPTIONS = {"DEFAULT_TIMEOUT", "DEFAULT_RESULT_TTL", "ASYNC"}


def sentinels_setting() -> list[str]:
    """REDIS_SENTINELS as `host:port` strings, whether it is a comma-separated string, a list of them, or a list of
    (host, port) pairs; empty when Sentinel is not configured."""
    value = getattr(settings, "REDIS_SENTINELS", None) or []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() if isinstance(item, str) else f"{item[0]}:{item[1]}" for item in items if item]


def tls_expected() -> bool:
    return settings.REDIS_URL.startswith("rediss://") or bool(getattr(settings, "REDIS_SSL_CA_CERTS", ""))


def is_local(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_describe(connection_class: type, options: dict[str, Any]) -> str:
    if not issubclass(connection_class, SSLConnection):
        return "no TLS"
    if options.get("ssl_cert_reqs", "required") in (ssl.CERT_NONE, "none", None):
        return "TLS, server certificate NOT verified"
    authority = options.get("ssl_ca_certs") or options.get("ssl_ca_path")
    if not authority:
        authority = "the given CA data" if options.get("ssl_ca_data") else "the system CAs"
    return f"TLS verified against {authority}"


def redis_client_describe(client: Redis) -> str:
    """`10.0.0.5:6380 db 2, remote, TLS verified against /etc/ca.pem`, `Sentinel master 'tidings' via
    10.0.0.1:26379, 10.0.0.2:26379, remote, no TLS`, `unix socket /run/redis.sock db 0, local, no TLS`."""
    pool = client.connection_pool
    options = pool.connection_kwargs
    tls = tls_describe(pool.connection_class, options)
    db = options.get("db", 0)
    if isinstance(pool, SentinelConnectionPool):
        addresses = [
            (
                sentinel.connection_pool.connection_kwargs.get("host", ""),
                sentinel.connection_pool.connection_kwargs.get("port"),
            )
            for sentinel in pool.sentinel_manager.sentinels
        ]
        via = ", ".join(f"{host}:{port}" for host, port in addresses)
        where = "local" if all(is_local(host) for host, _ in addresses) else "remote"
        return f"Sentinel master '{pool.service_name}' db {db} via {via}, {where}, {tls}"
    if issubclass(pool.connection_class, UnixDomainSocketConnection):
        return f"unix socket {options.get('path')} db {db}, local, {tls}"
    host = str(options.get("host", "localhost"))
    return f"{host}:{options.get('port', 6379)} db {db}, {'local' if is_local(host) else 'remote'}, {tls}"


def configured_redis_connections() -> list[tuple[str, Callable[[], Redis]]]:
    """(what uses it, how that code gets its client), one per distinct connection; queues sharing a configuration
    are one connection."""
    from deliveries import circuit_breakers, rate_limits
    from deliveries.api import throttling

    queues: dict[str, list[str]] = {}
    for name, options in settings.RQ_QUEUES.items():
        key = repr(sorted((option, repr(value)) for option, value in options.items() if option not in QUEUE_OPTIONS))
        queues.setdefault(key, []).append(name)
    connections: list[tuple[str, Callable[[], Redis]]] = [
        (f"queues {', '.join(names)}", functools.partial(django_rq.get_connection, names[0]))
        for names in queues.values()
    ]
    for alias, cache in settings.CACHES.items():
        if str(cache["BACKEND"]).startswith("django_redis."):
            from django_redis import get_redis_connection

            label = "cache" if alias == "default" else f"cache {alias}"
            connections.append((label, functools.partial(get_redis_connection, alias)))

    # The clients the rate limiters and the breakers keep (their modules' own, cached per process).
    def send_rate_limits() -> Redis:
        return rate_limits._limiter().storage.get_connection()  # type: ignore[attr-defined]  # limits' RedisStorage

    def api_rate_limits() -> Redis:
        return throttling._limiter(settings.REDIS_URL).storage.get_connection()  # type: ignore[attr-defined]

    connections += [
        ("send rate limits", send_rate_limits),
        ("API rate limits", api_rate_limits),
        ("circuit breakers", circuit_breakers._redis),
    ]
    return connections


def next_step_for(error: BaseException, where: str) -> str:
    text = str(error).lower()
    if isinstance(error, AuthenticationError) or "noauth" in text or "wrongpass" in text:
        return "check the password (in REDIS_URL, or the Sentinel settings)"
    if isinstance(error, ReadOnlyError):
        return "this is a read-only replica: point REDIS_URL at the master, or use REDIS_SENTINELS"
    if isinstance(error, MasterNotFoundError):
        return "check REDIS_SENTINEL_MASTER and REDIS_SENTINELS, and that the sentinels answer from this host"
    if "ssl" in text or "certificate" in text or "tls" in text:
        return "check REDIS_SSL_CA_CERTS (the CA that signed the server's certificate) and that the server speaks TLS"
    return f"check REDIS_URL, and that Redis answers at {where.split(',')[0]} from this host"


def setup_problem(client: Redis) -> str:
    """What this connection lacks that the settings ask of every connection."""
    pool = client.connection_pool
    if sentinels_setting() and not isinstance(pool, SentinelConnectionPool):
        return "does not go through Sentinel although REDIS_SENTINELS is set: it would not follow a failover"
    if tls_expected() and not issubclass(pool.connection_class, SSLConnection):
        return "has no TLS although REDIS_URL is rediss:// or REDIS_SSL_CA_CERTS is set"
    return ""


def redis_connection_check(name: str, client_for: Callable[[], Redis]) -> CheckResult:
    label = f"redis ({name})"
    try:
        client = client_for()
    except Exception as error:  # a setting the client cannot be built from (a bad URL, a missing option)
        return CheckResult.fail(
            label, f"cannot be set up ({one_line(error)})", "check REDIS_URL and the Redis settings"
        )
    where = redis_client_describe(client)
    problem = setup_problem(client)
    if problem:
        return CheckResult.fail(label, f"{where}: {problem}", "this connection misses a setting: report it")
    started = time.monotonic()
    try:
        client.set(PROBE_KEY, "1", ex=60)  # a write: a replica (a failover gone wrong) refuses it
        client.delete(PROBE_KEY)
        elapsed_ms = (time.monotonic() - started) * 1000
        server = server_describe(client)
    except (RedisError, OSError) as error:
        return CheckResult.fail(label, f"{where}: {one_line(error)}", next_step_for(error, where))
    return CheckResult.ok(label, f"{server} at {where}; a write took {elapsed_ms:.1f} ms")


def server_describe(client: Redis) -> str:
    """`Redis 7.2.4` (and the master a Sentinel gave), or just `Redis` where INFO is not allowed (some managed
    services rename it)."""
    try:
        version = client.info("server").get("redis_version")
    except ResponseError:
        version = None
    name = f"Redis {version}" if version else "Redis"
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        host, port = pool.get_master_address()
        name += f" (master now {host}:{port})"
    return name
