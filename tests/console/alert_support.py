"""What the alert tests share: findings made to order, a Redis of their own with a memory limit."""

from __future__ import annotations

import socket
import subprocess
import time

import redis

from console.services.alert_rules import Finding


def finding(key: str = "test_alert", *, firing: bool, detail: str = "a figure") -> Finding:
    return Finding(key=key, title="Test alert", firing=firing, detail=detail, next_step="Do the thing.")


class PrivateRedis:
    """A redis-server of the test's own on a free port, so its maxmemory can be set without touching the Redis
    other suites share."""

    def __init__(self, *, maxmemory: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory",
                maxmemory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)

    @property
    def queues(self) -> dict:
        return {name: {"URL": self.url, "DEFAULT_TIMEOUT": 60} for name in ("high", "default", "low")}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
