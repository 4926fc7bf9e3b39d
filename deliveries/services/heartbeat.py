"""The dispatcher's heartbeat: each running dispatcher stamps the time in Redis every few seconds.

Readiness (/health/ready), the dashboard and the alerts read it: a dispatcher that stopped beating has died or
hangs, and scheduled messages, campaigns and the reconciler wait until one runs again. Redis, not the database,
because a beat every few seconds per dispatcher is transport-like state that may be lost without harm (the next
beat restores it), as RQ keeps its workers' heartbeats.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import django_rq
from django.conf import settings

KEY = "tidings:dispatcher:heartbeats"  # hash: "<host>:<pid>" -> Unix time of its last beat
# Beats older than this are dropped when read: a dispatcher gone for a day is history, not news.
FORGET_AFTER_SECONDS = 86400


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Stamps this process's beat at most every `every` seconds however often `beat()` is called.

    Each beat also reads the Redis server's run id, in the same round trip: a new one means another server now
    answers (a restart, a failover to a replica), which may have lost jobs. `redis_replaced()` says so once, so
    that the dispatcher re-queues at once what the reconciler would otherwise find only RECONCILE_AFTER later.
    """

    def __init__(self, every: float | None = None):
        self.every = settings.DISPATCHER_HEARTBEAT_EVERY if every is None else every
        self.name = identity()
        self._last = 0.0
        self._run_id: str | None = None
        self._replaced = False

    def beat(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if now - self._last < self.every:
            return False
        pipe = django_rq.get_connection("default").pipeline(transaction=False)
        pipe.hset(KEY, self.name, repr(now))
        pipe.info("server")
        _, server = pipe.execute()
        run_id = server.get("run_id")
        if self._run_id is not None and run_id != self._run_id:
            self._replaced = True
        self._run_id = run_id
        self._last = now
        return True

    def redis_replaced(self) -> bool:
        """Whether another Redis server answered since the last call (never on the first beat)."""
        replaced, self._replaced = self._replaced, False
        return replaced

    def stop(self) -> None:
        """A dispatcher that stops cleanly says so: its absence is then not mistaken for a hang elsewhere."""
        django_rq.get_connection("default").hdel(KEY, self.name)


@dataclass(frozen=True)
class DispatcherBeat:
    name: str  # "<host>:<pid>"
    at: float  # Unix time of its last beat

    def age(self, now: float | None = None) -> float:
        return max((time.time() if now is None else now) - self.at, 0.0)


def dispatcher_beats(now: float | None = None) -> list[DispatcherBeat]:
    """Every dispatcher seen in the last day, the most recent beat first."""
    now = time.time() if now is None else now
    redis = django_rq.get_connection("default")
    beats = []
    for name, at in redis.hgetall(KEY).items():
        beat = DispatcherBeat(name=name.decode() if isinstance(name, bytes) else name, at=float(at))
        if beat.age(now) > FORGET_AFTER_SECONDS:
            redis.hdel(KEY, name)
        else:
            beats.append(beat)
    return sorted(beats, key=lambda beat: beat.at, reverse=True)
