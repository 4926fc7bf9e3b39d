"""The drill's own PostgreSQL cluster and redis-server, on free loopback ports in a temporary directory.

Other people's tests run on the machine's shared PostgreSQL (5432) and Redis (6379): a drill that restarted
those would break them, so it starts its own with the same binaries (initdb and pg_ctl from
/usr/lib/postgresql/*/bin, or PG_BIN) and never connects to the shared ones.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class DrillError(Exception):
    """The drill cannot go on: something it needs is missing or did not start, or the pipeline stalled. The
    message says what happened and what to do."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin_dir() -> Path:
    """PG_BIN, or the newest /usr/lib/postgresql/<version>/bin that has initdb (Debian's layout)."""
    if configured := os.environ.get("PG_BIN"):
        candidates = [Path(configured)]
    else:
        found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
        candidates = sorted((Path(path).parent for path in found), key=lambda p: int(p.parent.name), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    raise DrillError(
        "No PostgreSQL server binaries (initdb, pg_ctl) found under /usr/lib/postgresql/*/bin: install the "
        "postgresql package, or set PG_BIN to the directory that holds them."
    )


def wait_until(predicate, *, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class PrivatePostgres:
    """A throwaway PostgreSQL cluster: initdb with trust authentication for the `postgres` role, served on
    127.0.0.1 and a Unix socket in its own directory. Run as the postgres OS user when we are root (initdb
    refuses root)."""

    def __init__(self, directory: Path):
        self.bin = postgres_bin_dir()
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port = free_port()
        self.os_user = self._os_user()

    @staticmethod
    def _os_user() -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise DrillError(
                "Running as root, and initdb refuses root: create the postgres OS user (the postgresql package "
                "does), or run the drill as an ordinary user."
            ) from None
        if shutil.which("runuser") is None:
            raise DrillError("Running as root without runuser (util-linux) to start PostgreSQL as postgres.")
        return "postgres"

    @property
    def version(self) -> str:
        return self.bin.parent.name

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _server_tool(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if self.os_user:
            command = ["runuser", "-u", self.os_user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)  # noqa: S603 - our own arguments
        if check and result.returncode != 0:
            raise DrillError(f"{tool} failed: {(result.stderr or result.stdout).strip()[-500:]} (log: {self.log})")
        return result

    def client_tool(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        """pg_dump, pg_restore, psql... as this process, over TCP (trust authentication)."""
        command = [str(self.bin / tool), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *args]
        result = subprocess.run(command, capture_output=True, text=True)  # noqa: S603 - our own arguments
        if result.returncode != 0:
            raise DrillError(f"{tool} failed: {(result.stderr or result.stdout).strip()[-500:]}")
        return result

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.os_user:
            shutil.chown(self.directory, user=self.os_user)
        # --no-sync only skips flushing initdb's own files; the server keeps fsync on, as in production.
        self._server_tool("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _options(self) -> str:
        return f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"

    def _pg_ctl(self, *args: str) -> None:
        """pg_ctl on this cluster, waiting (up to a minute) until what it asked is done."""
        self._server_tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args)

    def start(self) -> None:
        self._pg_ctl("-o", self._options(), "start")

    def restart(self, mode: str) -> None:
        """pg_ctl restart -m fast (connections closed, a clean checkpoint) or immediate (as a crash: the server is
        killed and replays its WAL at the next start). Returns once it accepts connections again."""
        self._pg_ctl("-m", mode, "-o", self._options(), "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._server_tool("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop", check=False)

    def answers(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url("postgres"), connect_timeout=1).close()
            return True
        except psycopg.Error:
            return False

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')


class PrivateRedis:
    """A redis-server that keeps nothing on disk: killed and started again, it comes back empty."""

    def __init__(self, directory: Path):
        if shutil.which("redis-server") is None:
            raise DrillError("redis-server is not installed: apt-get install redis-server, then run again.")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "a")  # noqa: SIM115 - the server writes to it while it runs
        # No snapshot, no append-only file: what a fresh server on a lost machine has.
        persistence = ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(  # noqa: S603
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                *persistence,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if not wait_until(self.answers, timeout=15):
            raise DrillError(f"redis-server on port {self.port} did not answer; see {self.directory}/redis.log")

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.2, socket_timeout=0.5).ping())
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; the port refuses connections at once."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.kill()
