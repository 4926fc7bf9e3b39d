"""Real Redis servers for the failover and TLS tests, each on a free loopback port with its files in a tmp dir:
masters, replicas, sentinels (`redis-server --sentinel`), and the certificates for TLS (made with openssl)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import redis

from tests.support import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisProcess:
    """One redis-server (or sentinel) process, started from a config file in its own directory."""

    def __init__(
        self, directory: Path, name: str, lines: list[str], *, sentinel: bool = False, tls: dict | None = None
    ):
        self.directory = directory / name
        self.directory.mkdir(parents=True)
        self.port = free_port()
        self.tls = tls  # the client's keywords when the server speaks only TLS
        self.config = self.directory / "redis.conf"
        listen = ["port 0", f"tls-port {self.port}"] if tls else [f"port {self.port}"]
        self.config.write_text(
            "\n".join(["bind 127.0.0.1", *listen, f"dir {self.directory}", 'save ""', "appendonly no", *lines]) + "\n"
        )
        self.sentinel = sentinel
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisProcess:
        command = ["redis-server", str(self.config), *(["--sentinel"] if self.sentinel else [])]
        with open(self.directory / "out.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.answers, timeout=15, interval=0.05, message=f"redis-server on port {self.port}")
        return self

    def client(self, **kwargs) -> redis.Redis:
        options = {"socket_connect_timeout": 1, "socket_timeout": 5, **(self.tls or {}), **kwargs}
        return redis.Redis("127.0.0.1", self.port, ssl=bool(self.tls), **options)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL, as when the machine under it dies mid-write."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()

    def log(self) -> str:
        path = self.directory / "out.log"
        return path.read_text(errors="replace") if path.exists() else ""


class SentinelGroup:
    """A master, one replica and three sentinels watching the master (quorum 2)."""

    def __init__(self, directory: Path, *, down_after_ms: int = 1000, certificates: Certificates | None = None):
        # With certificates, every server speaks only TLS, to clients and to each other (replication, sentinels).
        tls = [*certificates.server_lines(), "tls-replication yes"] if certificates else []
        client = certificates.client_keywords() if certificates else None
        self.master = RedisProcess(directory, "master", tls, tls=client).start()
        # A name of its own: django-redis keeps its pools for the life of the process by URL, which with Sentinel
        # is the master's name, so a second group under the same name would be reached through the first's pool.
        self.master_name = f"tidings-{self.master.port}"
        replica_of = [f"replicaof 127.0.0.1 {self.master.port}", *tls]
        self.replica = RedisProcess(directory, "replica", replica_of, tls=client).start()
        monitor = [
            f"sentinel monitor {self.master_name} 127.0.0.1 {self.master.port} 2",
            f"sentinel down-after-milliseconds {self.master_name} {down_after_ms}",
            f"sentinel failover-timeout {self.master_name} 10000",
            f"sentinel parallel-syncs {self.master_name} 1",
            *tls,
        ]
        self.sentinels = [
            RedisProcess(directory, f"sentinel-{i}", monitor, sentinel=True, tls=client).start() for i in range(3)
        ]
        wait_for(self.ready, timeout=30, interval=0.2, message="the replica in sync, the sentinels acquainted")

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def ready(self) -> bool:
        """Failover can happen: the replica is in sync and every sentinel sees it and the two other sentinels."""
        try:
            if self.replica.client().info("replication").get("master_link_status") != "up":
                return False
            for sentinel in self.sentinels:
                client = sentinel.client(decode_responses=True)
                if len(client.sentinel_sentinels(self.master_name)) < 2 or not client.sentinel_slaves(self.master_name):
                    return False
        except (redis.RedisError, OSError):
            return False
        return True

    def master_port(self) -> int | None:
        """The master's port as the sentinels' majority sees it now."""
        ports = []
        for sentinel in self.sentinels:
            try:
                address = sentinel.client().sentinel_get_master_addr_by_name(self.master_name)
                ports.append(int(address[1]))
            except (redis.RedisError, OSError, TypeError):
                continue
        return max(set(ports), key=ports.count) if ports else None

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            server.stop()

    def logs(self) -> str:
        servers = (self.master, self.replica, *self.sentinels)
        return "\n".join(f"--- {server.directory.name}\n{server.log()[-3000:]}" for server in servers)


class Certificates:
    """A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and another CA that signed
    nothing of these (to be refused), made with openssl in `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = self._ca("ca")
        self.other_ca = self._ca("other-ca")
        self.server_cert, self.server_key = self._signed("server", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self.client_cert, self.client_key = self._signed("client", "extendedKeyUsage=clientAuth")

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.directory, check=True, capture_output=True, timeout=60)

    def _ca(self, name: str) -> Path:
        subject = f"/CN=Tidings test {name}"
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject, "-keyout",
                      f"{name}.key", "-out", f"{name}.pem")  # fmt: skip
        return self.directory / f"{name}.pem"

    def _signed(self, name: str, extension: str) -> tuple[Path, Path]:
        (self.directory / f"{name}.ext").write_text(extension + "\n")
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", f"{name}.key",
                      "-out", f"{name}.csr")  # fmt: skip
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                      "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")  # fmt: skip
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"

    def server_lines(self, *, require_client_certificate: bool = True) -> list[str]:
        return [
            f"tls-cert-file {self.server_cert}",
            f"tls-key-file {self.server_key}",
            f"tls-ca-cert-file {self.ca}",
            f"tls-auth-clients {'yes' if require_client_certificate else 'no'}",
        ]

    def client_keywords(self) -> dict[str, str]:
        return {
            "ssl_ca_certs": str(self.ca),
            "ssl_certfile": str(self.client_cert),
            "ssl_keyfile": str(self.client_key),
        }
