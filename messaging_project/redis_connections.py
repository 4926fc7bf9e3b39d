"""Where every Redis connection of Tidings gets its configuration: a plain REDIS_URL, TLS, or Sentinel.

Three shapes, chosen by settings (README, "Configuration"; docs/operations.md, "Redis: Sentinel and TLS"):

- plain: REDIS_URL (`redis://[user:password@]host:port/db`). What every consumer did before; nothing is added to
  it, so the default path costs exactly what it did.
- TLS: a `rediss://` REDIS_URL, with REDIS_SSL_CA_CERTS (and optionally REDIS_SSL_CERTFILE / REDIS_SSL_KEYFILE) put
  into the URL's query, where redis-py's `from_url` reads them: django-rq, django-redis and `limits` all build their
  clients with `from_url`, so one URL carries the same TLS options to all of them. Certificates are verified
  (redis-py's `ssl_cert_reqs` defaults to "required").
- Sentinel: REDIS_SENTINELS (`host:port,host:port`) and REDIS_SENTINEL_MASTER. REDIS_URL then says only how to talk
  to the master, never where it is: its username, password and database number, and `rediss://` for TLS to the
  master *and* the sentinels (the same CA and client certificate). REDIS_SENTINEL_PASSWORD is the sentinels' own.
  Each library is configured through its own documented Sentinel options (django-rq SENTINELS/MASTER_NAME,
  django-redis' SentinelClient, redis-py's Sentinel), whose pools ask the sentinels for the master when they
  connect: after a failover, the next connection goes to the new master without a restart.

Settings build CACHES and RQ_QUEUES from `RedisConfig` (so django-rq's queues, workers and `get_connection()` and the
cache follow it), and the rate limits, the API throttle and the circuit breakers share `shared_client()`.
This module is plumbing: it imports no app.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import redis
from redis.connection import SSLConnection, parse_url
from redis.sentinel import Sentinel, SentinelManagedConnection
from redis.utils import SENTINEL

# A dead Redis (or sentinel) fails a connection attempt fast instead of hanging the caller.
CONNECT_TIMEOUT = 3
# Reads and writes of the shared client (breakers, rate limits) give up after this: a send must not hang on Redis.
SHARED_CLIENT_SOCKET_TIMEOUT = 3


# In the order of RedisConfig's fields after `url`.
_OPTIONAL_SETTINGS = (
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_SSL_CA_CERTS",
    "REDIS_SSL_CERTFILE",
    "REDIS_SSL_KEYFILE",
)


class ClosingSentinelConnection(SentinelManagedConnection):
    """A connection to the master found through Sentinel that, like redis-py's plain Connection, closes itself when
    a read is interrupted. redis-py 8.1's SentinelManagedConnection reads with `disconnect_on_error=False` by
    default, so an exception raised mid-read (RQ's warm shutdown raises one from its SIGTERM handler while the idle
    worker waits in BLPOP) put the connection back in the pool with BLPOP's answer still to come: the worker's next
    command waited behind it, and a stopped worker hung until its supervisor killed it. Given to every library
    through its documented `connection_class` keyword. tests/redis_ha/test_worker_stops.py says when redis-py's
    default changes and this is no longer needed."""

    def read_response(
        self,
        disable_decoding: Any = False,
        *,
        timeout: float | object = SENTINEL,
        disconnect_on_error: bool | None = True,
        push_request: bool | None = False,
    ) -> Any:
        return super().read_response(
            disable_decoding,
            timeout=timeout,
            disconnect_on_error=disconnect_on_error,
            push_request=push_request,
        )


class ClosingSentinelSSLConnection(ClosingSentinelConnection, SSLConnection):
    """The same, over TLS (as redis-py's SentinelManagedSSLConnection)."""


@dataclass(frozen=True)
class RedisConfig:
    """The Redis settings, as given. Parsing never raises: `problems()` says what is wrong, for `manage.py check`."""

    url: str
    sentinels: str = ""
    sentinel_master: str = ""
    sentinel_password: str = ""
    ssl_ca_certs: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> RedisConfig:
        """The configuration the settings describe now (tests override them), one instance per distinct value:
        the send path asks for it at each rate-limit slot, so it costs a tuple and a dict lookup."""
        values = (settings.REDIS_URL, *(getattr(settings, name, "") for name in _OPTIONAL_SETTINGS))
        config = _by_settings.get(values)
        if config is None:
            config = _by_settings[values] = cls(*values)
        return config

    # --- what was asked for ---------------------------------------------------------------------------------
    @property
    def uses_sentinel(self) -> bool:
        """Sentinel only when both halves are there; a half configuration is refused by `problems()`."""
        return bool(self.sentinel_addresses() and self.sentinel_master)

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "rediss"

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        addresses = []
        for entry in self.sentinels.split(","):
            host, _, port = entry.strip().rpartition(":")
            if host and port.isdigit():
                addresses.append((host.strip("[]"), int(port)))
        return addresses

    def problems(self) -> list[tuple[str, str]]:
        """Each (problem, what to do) that keeps this configuration from working; empty when it is whole."""
        found = []
        scheme = urlsplit(self.url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            found.append((f"REDIS_URL has the scheme {scheme!r}.", "Write redis://, rediss:// (TLS) or unix://."))
        entries = [entry for entry in self.sentinels.split(",") if entry.strip()]
        if len(entries) != len(self.sentinel_addresses()):
            found.append(
                (
                    f"REDIS_SENTINELS={self.sentinels!r} is not a list of host:port.",
                    "Write it like sentinel-1:26379,sentinel-2:26379,sentinel-3:26379.",
                )
            )
        if entries and not self.sentinel_master:
            found.append(
                (
                    "REDIS_SENTINELS is set without REDIS_SENTINEL_MASTER: which master to ask the sentinels for?",
                    "Set REDIS_SENTINEL_MASTER to the name the sentinels monitor (`sentinel monitor NAME ...`).",
                )
            )
        if not entries and (self.sentinel_master or self.sentinel_password):
            found.append(
                (
                    "REDIS_SENTINEL_MASTER or REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS is not.",
                    "Set REDIS_SENTINELS=host:port,host:port, or unset both to use REDIS_URL alone.",
                )
            )
        tls_files = {
            "REDIS_SSL_CA_CERTS": self.ssl_ca_certs,
            "REDIS_SSL_CERTFILE": self.ssl_certfile,
            "REDIS_SSL_KEYFILE": self.ssl_keyfile,
        }
        given = [name for name, path in tls_files.items() if path]
        if given and not self.uses_tls:
            found.append(
                (
                    f"{', '.join(given)} set, but REDIS_URL is not rediss://: Redis would be reached without TLS.",
                    "Write REDIS_URL as rediss://... (TLS), or unset the REDIS_SSL_* settings.",
                )
            )
        for name in given:
            if not os.access(tls_files[name], os.R_OK):
                found.append((f"{name}={tls_files[name]!r} is not a readable file.", f"Point {name} at a PEM file."))
        if self.ssl_keyfile and not self.ssl_certfile:
            found.append(("REDIS_SSL_KEYFILE is set without REDIS_SSL_CERTFILE.", "Set both for a client certificate."))
        return found

    def describe(self) -> str:
        """Where Redis is, without passwords or options: for messages and logs."""
        if self.uses_sentinel:
            sentinels = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses())
            return f"Sentinel master {self.sentinel_master!r} (sentinels {sentinels}, db {self._master_db()})"
        url = self.url.split("?", 1)[0]
        if "@" in url:
            scheme, rest = url.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return url

    # --- what the libraries are given ----------------------------------------------------------------------
    def tls_options(self) -> dict[str, str]:
        """redis-py's TLS keywords; certificates are always verified (ssl_cert_reqs "required")."""
        if not self.uses_tls:
            return {}
        options = {"ssl_cert_reqs": "required"}
        for name, path in (
            ("ssl_ca_certs", self.ssl_ca_certs),
            ("ssl_certfile", self.ssl_certfile),
            ("ssl_keyfile", self.ssl_keyfile),
        ):
            if path:
                options[name] = path
        return options

    def client_url(self) -> str:
        """REDIS_URL with the connect timeout and the TLS options in its query (the URL's own values win)."""
        parts = urlsplit(self.url)
        query = {"socket_connect_timeout": str(CONNECT_TIMEOUT), **self.tls_options(), **dict(parse_qsl(parts.query))}
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _master_url_options(self) -> dict[str, Any]:
        try:
            options = parse_url(self.client_url())
        except ValueError:  # a scheme redis-py does not know: problems() says so, in one line
            return {}
        for where in ("host", "port", "path", "connection_class"):
            options.pop(where, None)  # Sentinel says where the master is; TLS is chosen by `ssl` below
        return options

    def _master_db(self) -> int:
        return int(self._master_url_options().get("db", 0))

    def master_connection_kwargs(self) -> dict[str, Any]:
        """Keywords for connections to the master found through Sentinel: REDIS_URL's credentials, db, options."""
        options = self._master_url_options()
        options["connection_class"] = ClosingSentinelSSLConnection if self.uses_tls else ClosingSentinelConnection
        return options

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Keywords for connections to the sentinels themselves: their own password, the same TLS as the master."""
        options: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": CONNECT_TIMEOUT,
            **self.tls_options(),
        }
        if self.uses_tls:
            options["ssl"] = True
        if self.sentinel_password:
            options["password"] = self.sentinel_password
        return options

    def rq_queue(self, **extra: Any) -> dict[str, Any]:
        """One RQ_QUEUES entry (django-rq): URL, or its documented SENTINELS / MASTER_NAME options."""
        if not self.uses_sentinel:
            return {"URL": self.client_url(), **extra}
        master = self.master_connection_kwargs()
        return {
            "SENTINELS": self.sentinel_addresses(),
            "MASTER_NAME": self.sentinel_master,
            "DB": master.pop("db", 0),
            "USERNAME": master.pop("username", None),
            "PASSWORD": master.pop("password", None),
            "CONNECTION_KWARGS": master,
            "SENTINEL_KWARGS": self.sentinel_kwargs(),
            **extra,
        }

    def cache(self) -> dict[str, Any]:
        """CACHES["default"] (django-redis): the URL, or its SentinelClient and SentinelConnectionFactory."""
        options: dict[str, Any] = {"SOCKET_CONNECT_TIMEOUT": CONNECT_TIMEOUT, "SOCKET_TIMEOUT": CONNECT_TIMEOUT}
        if not self.uses_sentinel:
            return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": self.client_url(), "OPTIONS": options}
        master = self.master_connection_kwargs()
        # django-redis reads the service name from the URL's host. TLS comes with the connection class in the
        # pool's keywords (a rediss:// scheme alone would give a plain SSLConnection, which does not ask the
        # sentinels where the master is).
        username, password = master.pop("username", None), master.pop("password", None)
        auth = f"{quote(username or '', safe='')}:{quote(password or '', safe='')}@" if username or password else ""
        location = f"redis://{auth}{quote(self.sentinel_master, safe='')}/{master.pop('db', 0)}"
        for name in ("socket_connect_timeout", "socket_timeout"):
            master.pop(name, None)
        options.update(
            {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": self.sentinel_addresses(),
                "SENTINEL_KWARGS": self.sentinel_kwargs(),
                "CONNECTION_POOL_KWARGS": master,
            }
        )
        return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location, "OPTIONS": options}

    def new_client(self, **kwargs: Any) -> redis.Redis:
        """A client with its own connection pool (to the master, through Sentinel when configured)."""
        if not self.uses_sentinel:
            return redis.Redis.from_url(self.client_url(), **kwargs)
        sentinel = Sentinel(
            self.sentinel_addresses(), sentinel_kwargs=self.sentinel_kwargs(), **self.master_connection_kwargs()
        )
        return sentinel.master_for(self.sentinel_master, **kwargs)


_by_settings: dict[tuple[str, ...], RedisConfig] = {}
_shared: dict[RedisConfig, redis.Redis] = {}
_shared_lock = threading.Lock()


def shared_client(config: RedisConfig) -> redis.Redis:
    """The process's client for this configuration, made once: its pool is reused by every caller (one new
    connection per process, not per call). It returns bytes (pybreaker decodes them itself)."""
    client = _shared.get(config)
    if client is None:
        with _shared_lock:
            client = _shared.get(config)
            if client is None:
                client = _shared[config] = config.new_client(socket_timeout=SHARED_CLIENT_SOCKET_TIMEOUT)
    return client
