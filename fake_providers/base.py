"""What every fake provider shares: recorded messages, a request counter, injected faults and the /_fake/ endpoints.

Provider subclasses add their own API routes, say how they authenticate and how their error bodies look.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
import threading
import time
from collections.abc import Iterable
from functools import cached_property
from typing import Any, ClassVar

from aiohttp import web

from .server import BackgroundServer

Message = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class FaultSettings:
    """Immutable, so a request handler reads one consistent set even while another thread reconfigures."""

    fail_500_rate: float = 0.0
    fail_429_rate: float = 0.0
    down: bool = False
    latency: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for rate_name in ("fail_500_rate", "fail_429_rate"):
            rate = getattr(self, rate_name)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
                raise ValueError(f"{rate_name} must be a number between 0 and 1, not {rate!r}.")
        if self.fail_500_rate + self.fail_429_rate > 1.0:
            raise ValueError("fail_500_rate + fail_429_rate must not exceed 1.")
        if not isinstance(self.down, bool):
            raise ValueError(f"down must be true or false, not {self.down!r}.")
        if isinstance(self.latency, bool) or not isinstance(self.latency, int | float) or self.latency < 0:
            raise ValueError(f"latency must be a number of seconds >= 0, not {self.latency!r}.")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an integer or null, not {self.seed!r}.")


class FaultSetting:
    """Exposes one field of FaultSettings as a plain attribute (`fake.latency = 0.2`) that goes through configure()."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, provider: FakeProvider | None, owner: type | None = None) -> Any:
        if provider is None:
            return self
        return getattr(provider.faults, self.name)

    def __set__(self, provider: FakeProvider, value: Any) -> None:
        provider.configure(**{self.name: value})


class FakeProvider:
    """Thread-safe state behind a fake provider's aiohttp application.

    Request handlers run on the server's event loop thread while tests read and reconfigure from theirs, so all
    mutable state sits behind one lock.
    """

    display_name: ClassVar[str] = "provider"
    # HTTP status -> (provider error code, message) for refusals that happen before a request is looked at.
    refusals: ClassVar[dict[int, tuple[int, str]]]

    fail_500_rate = FaultSetting()
    fail_429_rate = FaultSetting()
    down = FaultSetting()
    latency = FaultSetting()
    seed = FaultSetting()

    def __init__(self, latency: float = 0.0, seed: int | None = None) -> None:
        self._initial_faults = FaultSettings(latency=latency, seed=seed)
        self._lock = threading.Lock()
        self._faults = self._initial_faults
        self._random = random.Random(seed)
        self._messages: list[Message] = []
        self._request_count = 0
        self.server: BackgroundServer | None = None

    def add_provider_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def is_authorized(self, request: web.Request) -> bool:
        raise NotImplementedError

    def error_response(self, status: int, code: int, message: str) -> web.Response:
        raise NotImplementedError

    def recipients_of(self, message: Message) -> Iterable[str]:
        """What count_by_to() counts for one recorded message."""
        return [message["to"]]

    @property
    def faults(self) -> FaultSettings:
        return self._faults

    def configure(self, **changes: Any) -> FaultSettings:
        """Changes any of fail_500_rate, fail_429_rate, down, latency, seed; a new seed restarts the random draws."""
        unknown = set(changes) - {field.name for field in dataclasses.fields(FaultSettings)}
        if unknown:
            raise ValueError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        with self._lock:
            self._faults = dataclasses.replace(self._faults, **changes)
            if "seed" in changes:
                self._random = random.Random(self._faults.seed)
            return self._faults

    @property
    def received(self) -> list[Message]:
        """Copies of the accepted messages, oldest first."""
        with self._lock:
            return [dict(message) for message in self._messages]

    @property
    def request_count(self) -> int:
        """Every provider API request, including refused and failed ones."""
        with self._lock:
            return self._request_count

    def count_by_to(self) -> collections.Counter[str]:
        return collections.Counter(recipient for message in self.received for recipient in self.recipients_of(message))

    def reset(self) -> None:
        """Forgets messages and requests and puts the faults back to how the fake was constructed."""
        with self._lock:
            self._messages.clear()
            self._request_count = 0
            self._faults = self._initial_faults
            self._random = random.Random(self._initial_faults.seed)

    def record(self, message: Message) -> Message:
        message["received_at"] = time.time()
        with self._lock:
            self._messages.append(message)
        return message

    def build_app(self) -> web.Application:
        """A fresh application over this fake's state; each server needs its own."""
        app = web.Application()
        app.router.add_get("/_fake/messages", self._messages_view)
        app.router.add_post("/_fake/reset", self._reset_view)
        app.router.add_get("/_fake/config", self._config_view)
        app.router.add_post("/_fake/config", self._configure_view)
        self.add_provider_routes(app)
        return app

    @cached_property
    def app(self) -> web.Application:
        """For aiohttp's test client or a runner of your own; start() builds a separate one."""
        return self.build_app()

    def start(self, port: int = 0) -> BackgroundServer:
        """Serves this fake from a background thread; the returned server is also a context manager."""
        if self.server is not None and self.server.is_running:
            raise RuntimeError(f"The fake {self.display_name} is already running at {self.server.url}.")
        self.server = BackgroundServer(self.build_app(), port).start()
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError(f"The fake {self.display_name} is not running; call start() first.")
        return self.server.url

    async def refusal_for(self, request: web.Request) -> web.Response | None:
        """Counts the request, waits out the latency and returns the error to answer with, if any.

        Checked in the order a real outage would show: unavailable, then bad credentials, then random failures.
        """
        with self._lock:
            self._request_count += 1
            faults = self._faults
            draw = self._random.random()
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.down:
            return self.refusal(503)
        if not self.is_authorized(request):
            return self.refusal(401)
        if draw < faults.fail_500_rate:
            return self.refusal(500)
        if draw < faults.fail_500_rate + faults.fail_429_rate:
            return self.refusal(429)
        return None

    def refusal(self, status: int) -> web.Response:
        return self.error_response(status, *self.refusals[status])

    async def _messages_view(self, request: web.Request) -> web.Response:
        return web.json_response({"messages": self.received, "request_count": self.request_count})

    async def _reset_view(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _config_view(self, request: web.Request) -> web.Response:
        return web.json_response(dataclasses.asdict(self.faults))

    async def _configure_view(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("Send a JSON object of settings to change.")
            faults = self.configure(**changes)
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(dataclasses.asdict(faults))
