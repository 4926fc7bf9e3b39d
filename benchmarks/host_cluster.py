"""A deployment with worker machines, on this one machine: `HostNetwork` hosts (network namespaces, or process
groups where those are unavailable), a Redis server of its own listening on every host's service address, and a
counting forwarder to PostgreSQL (which listens on 127.0.0.1 only) on the same addresses, one listener per host.
The caller starts the fake Twilio on `cluster.service_addresses`. Used by tests/reliability/test_many_hosts.py and
the `many_hosts` benchmark scenario (benchmarks/many_hosts.py).

What the hosts cost PostgreSQL and Redis is read on the way (`costs_snapshot`, `costs_since`): statements and
round trips at the forwarder, commands and read events from Redis's INFO, the database's size, and its WAL
(benchmarks/wal_meter.py).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from benchmarks.host_network import Host, HostNetwork
from benchmarks.wal_meter import WalMeter
from benchmarks.wire_counter import CountingForwarder

ROOT = Path(__file__).resolve().parent.parent


def free_port(address: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of the run's own, without persistence, on `addresses` (all on one port)."""

    def __init__(self, addresses: list[str], log: Path) -> None:
        self.addresses = addresses
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", *addresses, "--save", "", "--appendonly", "no"]
            + ["--protected-mode", "no", "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        import redis

        self.client = redis.Redis(host=addresses[0], port=self.port)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if self.client.ping():
                    return
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}; see {log}")
            time.sleep(0.05)

    def url(self, address: str) -> str:
        return f"redis://{address}:{self.port}/0"

    def commands(self) -> int:
        """Every command Redis has run so far (INFO commandstats, summed)."""
        return sum(stats["calls"] for stats in self.client.info("commandstats").values())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cluster:
    """Hosts, a Redis and a PostgreSQL forwarder for one run; a context manager that removes all of it on exit,
    however the run ends."""

    def __init__(self, hosts: int, *, log_dir: Path, postgres: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.log_dir = log_dir
        self.network = HostNetwork(hosts)
        self.redis: RedisServer | None = None
        self.forwarder: CountingForwarder | None = None
        self.wal: WalMeter | None = None
        try:
            self.redis = RedisServer(self.service_addresses, log_dir / "redis.log")
            listeners = [(host.name, host.service_address) for host in self.network.hosts]
            self.forwarder = CountingForwarder(listeners, postgres).start()
        except BaseException:
            self.close()
            raise

    @property
    def mode(self) -> str:
        return self.network.mode

    @property
    def hosts(self) -> list[Host]:
        return self.network.hosts

    @property
    def service_addresses(self) -> list[str]:
        return sorted({*self.network.service_addresses, "127.0.0.1"})

    @property
    def redis_url(self) -> str:
        """For processes on the machine itself (the test, a dispatcher)."""
        assert self.redis is not None
        return self.redis.url("127.0.0.1")

    def host_env(self, host: Host, env: dict[str, str], *, database: dict[str, str], twilio_port: int) -> dict:
        """`env` with the database, Redis and the fake Twilio as `host` reaches them."""
        assert self.redis is not None and self.forwarder is not None
        address = host.service_address
        user = quote(database.get("USER") or "postgres")
        password = f":{quote(database['PASSWORD'])}" if database.get("PASSWORD") else ""
        return {
            **env,
            # Unencrypted, so the forwarder can count statements.
            "DATABASE_URL": f"postgres://{user}{password}@{address}:{self.forwarder.port_of(host.name)}/"
            f"{database['NAME']}?sslmode=disable",
            "REDIS_URL": self.redis.url(address),
            "TWILIO_API_BASE_URL": f"http://{address}:{twilio_port}",
        }

    def start_worker(self, host: Host, env: dict[str, str]) -> subprocess.Popen:
        command = [sys.executable, str(ROOT / "manage.py"), "run_worker", "-v", "0"]
        return self.network.start(host, command, env=env, log=self.log_dir / f"worker-{host.name}.log", cwd=ROOT)

    def running_hosts(self) -> list[Host]:
        return [host for host in self.hosts if any(p.poll() is None for p in host.processes)]

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        """Until `count` RQ workers are registered (each has imported Django and the send path)."""
        from rq import Worker

        assert self.redis is not None
        deadline = time.monotonic() + timeout
        while Worker.count(connection=self.redis.client) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers did not register within {timeout} s; logs in {self.log_dir}")
            time.sleep(0.1)

    def costs_snapshot(self) -> dict:
        """Counters to subtract (`costs_since`): PostgreSQL statements and round trips through the forwarder
        (every host's), Redis commands and read events, and the WAL position."""
        assert self.redis is not None and self.forwarder is not None
        if self.wal is None:
            from django.db import connection

            self.wal = WalMeter(connection)
        wire = self.forwarder.snapshot().values()
        stats = self.redis.client.info("stats")
        return {
            "sql_statements": sum(counts.statements for counts in wire),
            "sql_round_trips": sum(counts.round_trips for counts in wire),
            "redis_commands": self.redis.commands(),
            # A read event per request or pipeline a client sends: Redis's side of a round trip.
            "redis_round_trips": stats["total_reads_processed"],
            "database_bytes": self.wal.database_size(),
            "wal_position": self.wal.position(),
        }

    def costs_since(self, before: dict, messages: int) -> dict[str, float | str]:
        """What each of `messages` cost since `before`, and where the WAL figure comes from."""
        assert self.wal is not None
        after = self.costs_snapshot()
        counted: dict[str, float | str] = {
            f"{key}_per_message": round((after[key] - before[key]) / max(messages, 1), 3)
            for key in after
            if key != "wal_position"
        }
        wal, full_pages, counted["wal_counted_for"] = self.wal.bytes_since(before["wal_position"])
        counted["wal_bytes_per_message"] = round(wal / max(messages, 1))
        if full_pages is not None:
            counted["wal_full_page_image_bytes_per_message"] = round(full_pages / max(messages, 1))
        return counted

    def close(self) -> None:
        try:
            self.network.close()
        finally:
            if self.forwarder is not None:
                self.forwarder.stop()
            if self.redis is not None:
                self.redis.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
