"""What every fake provider shares: recorded messages, a request counter, injected faults, callbacks to the
application (status callbacks, tracking events) and the /_fake/ endpoints.

Provider subclasses add their own API routes, say how they authenticate, how their error bodies look, and which
callbacks they post after accepting a message (with their own settings dataclass, `callback_settings_class`).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import ipaddress
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from .server import LOOPBACK, BackgroundServer

Message = dict[str, Any]
Callback = dict[str, Any]

logger = logging.getLogger(__name__)

CALLBACK_SESSION = web.AppKey("callback_session", aiohttp.ClientSession)
CALLBACK_TIMEOUT_SECONDS = 10.0


def is_loopback_url(url: str) -> bool:
    """Callbacks only ever go to this machine: a fake must never post to the internet."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(sorted(choices))}, not {value!r}.")


def check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}.")


def check_text(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {value!r}.")


# When a request arrived (epoch seconds), noted on it by refusal_for before the latency is waited out.
RECEIVED_AT = web.RequestKey("received_at", float)


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

    settings_attribute = "faults"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, provider: FakeProvider | None, owner: type | None = None) -> Any:
        if provider is None:
            return self
        return getattr(getattr(provider, self.settings_attribute), self.name)

    def __set__(self, provider: FakeProvider, value: Any) -> None:
        provider.configure(**{self.name: value})


class CallbackSetting(FaultSetting):
    """The same for one field of the provider's callback settings (`fake.outcome = "undelivered"`)."""

    settings_attribute = "callback_settings"


@dataclasses.dataclass(frozen=True)
class NoCallbacks:
    """For a provider that posts nothing back."""


class FakeProvider:
    """Thread-safe state behind a fake provider's aiohttp application.

    Request handlers run on the server's event loop thread while tests read and reconfigure from theirs, so all
    mutable state sits behind one lock.
    """

    display_name: ClassVar[str] = "provider"
    # HTTP status -> (provider error code, message) for refusals that happen before a request is looked at.
    refusals: ClassVar[dict[int, tuple[int, str]]]
    # A frozen dataclass of what the provider posts back after accepting a message, and how.
    callback_settings_class: ClassVar[type] = NoCallbacks

    fail_500_rate = FaultSetting()
    fail_429_rate = FaultSetting()
    down = FaultSetting()
    latency = FaultSetting()
    seed = FaultSetting()

    def __init__(self, latency: float = 0.0, seed: int | None = None, **callback_settings: Any) -> None:
        self._initial_faults = FaultSettings(latency=latency, seed=seed)
        self._initial_callback_settings = self.callback_settings_class(**callback_settings)
        self._lock = threading.Lock()
        self._faults = self._initial_faults
        self._callback_settings = self._initial_callback_settings
        self._random = random.Random(seed)
        self._messages: list[Message] = []
        self._callbacks: list[Callback] = []
        self._callbacks_in_flight = 0
        self._request_count = 0
        self._answers_waiting = 0
        self._peak_answers_waiting = 0
        self._tasks: set[asyncio.Task] = set()
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

    @property
    def callback_settings(self) -> Any:
        return self._callback_settings

    def configure(self, **changes: Any) -> FaultSettings:
        """Changes any of fail_500_rate, fail_429_rate, down, latency, seed, or a callback setting of the provider;
        a new seed restarts the random draws. Returns the fault settings."""
        fault_names = {field.name for field in dataclasses.fields(FaultSettings)}
        callback_names = {field.name for field in dataclasses.fields(self.callback_settings_class)}
        unknown = set(changes) - fault_names - callback_names
        if unknown:
            raise ValueError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        fault_changes = {name: value for name, value in changes.items() if name in fault_names}
        callback_changes = {name: value for name, value in changes.items() if name in callback_names}
        with self._lock:
            faults = dataclasses.replace(self._faults, **fault_changes)
            callbacks = dataclasses.replace(self._callback_settings, **callback_changes)
            self._faults, self._callback_settings = faults, callbacks
            if "seed" in changes:
                self._random = random.Random(self._faults.seed)
            return self._faults

    def settings_as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.faults), **dataclasses.asdict(self.callback_settings)}

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

    @property
    def callbacks(self) -> list[Callback]:
        """Copies of the callbacks posted so far (url, headers, body, the answer's status or the error), oldest
        first. Each holds exactly what was sent, so a test can replay it."""
        with self._lock:
            return [dict(callback) for callback in self._callbacks]

    @property
    def peak_answers_waiting(self) -> int:
        """The most requests that were waiting out the latency at the same time since the last reset: above 1 shows
        that slow answers overlap, as a real provider's do, rather than queue behind each other."""
        with self._lock:
            return self._peak_answers_waiting

    async def _wait_out(self, latency: float) -> None:
        with self._lock:
            self._answers_waiting += 1
            self._peak_answers_waiting = max(self._peak_answers_waiting, self._answers_waiting)
        try:
            await asyncio.sleep(latency)
        finally:
            with self._lock:
                self._answers_waiting -= 1

    @property
    def callbacks_in_flight(self) -> int:
        """Callbacks scheduled or being posted."""
        with self._lock:
            return self._callbacks_in_flight

    def reset(self) -> None:
        """Forgets messages, requests and callbacks, and puts the settings back to how the fake was constructed.

        Callbacks still waiting to be posted are dropped."""
        with self._lock:
            self._messages.clear()
            self._callbacks.clear()
            self._request_count = 0
            self._peak_answers_waiting = self._answers_waiting
            self._faults = self._initial_faults
            self._callback_settings = self._initial_callback_settings
            self._random = random.Random(self._initial_faults.seed)
            tasks = list(self._tasks)
        loop = self.server.loop if self.server is not None else None
        if loop is not None and tasks:
            for task in tasks:
                loop.call_soon_threadsafe(task.cancel)

    def record(self, message: Message, received_at: float | None = None) -> Message:
        """Keep an accepted message; `received_at` is when its request arrived (refusal_for notes it on the
        request), before the latency the fake then waits out, as a real provider receives it and then answers."""
        message["received_at"] = received_at if received_at is not None else time.time()
        with self._lock:
            self._messages.append(message)
        return message

    def build_app(self) -> web.Application:
        """A fresh application over this fake's state; each server needs its own."""
        app = web.Application()
        app.router.add_get("/_fake/messages", self._messages_view)
        app.router.add_get("/_fake/callbacks", self._callbacks_view)
        app.router.add_post("/_fake/reset", self._reset_view)
        app.router.add_get("/_fake/config", self._config_view)
        app.router.add_post("/_fake/config", self._configure_view)
        app.on_startup.append(self._open_callback_session)
        app.on_cleanup.append(self._close_callback_session)
        self.add_provider_routes(app)
        return app

    # --- Callbacks to the application ------------------------------------------------------------------------

    async def _open_callback_session(self, app: web.Application) -> None:
        timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_SECONDS)
        app[CALLBACK_SESSION] = aiohttp.ClientSession(timeout=timeout)

    async def _close_callback_session(self, app: web.Application) -> None:
        with self._lock:
            tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app[CALLBACK_SESSION].close()

    def schedule_callbacks(
        self, request: web.Request, posts: Callable[[aiohttp.ClientSession], Awaitable[None]]
    ) -> None:
        """Runs `posts(session)` in the background on the server's loop, after the current answer has gone out."""
        session = request.app[CALLBACK_SESSION]
        with self._lock:
            self._callbacks_in_flight += 1

        async def run() -> None:
            try:
                await posts(session)
            except asyncio.CancelledError:
                pass
            except Exception:  # a fake must keep serving whatever happens to one message's callbacks
                logger.exception("Fake %s: callbacks failed", self.display_name)
            finally:
                with self._lock:
                    self._callbacks_in_flight -= 1

        task = asyncio.get_running_loop().create_task(run())
        with self._lock:
            self._tasks.add(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task) -> None:
        with self._lock:
            self._tasks.discard(task)

    async def post_callback(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        body: bytes,
        headers: dict[str, str],
        kind: str,
        **details: Any,
    ) -> Callback:
        """Posts one callback and records it with its answer. Only loopback URLs are called: anything else is
        recorded as skipped, so a fake can never reach the internet from a test."""
        callback: Callback = {"kind": kind, "url": url, "headers": headers, "body": body.decode(), **details}
        if not is_loopback_url(url):
            callback.update(status=None, error=f"not posted: {url} is not on this machine")
        else:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    callback.update(status=response.status, error=None, answer=(await response.text())[:1000])
            except (aiohttp.ClientError, TimeoutError) as error:
                callback.update(status=None, error=f"{error.__class__.__name__}: {error}")
        callback["posted_at"] = time.time()
        with self._lock:
            self._callbacks.append(callback)
        return dict(callback)

    def run_on_server_loop(self, coroutine_function: Callable[[aiohttp.ClientSession], Awaitable[Any]]) -> Any:
        """From a test's thread: runs `coroutine_function(session)` on the running server's loop, returns its result."""
        if self.server is None or self.server.loop is None:
            raise RuntimeError(f"The fake {self.display_name} is not running; call start() first.")
        session = self.server.app[CALLBACK_SESSION]
        future = asyncio.run_coroutine_threadsafe(coroutine_function(session), self.server.loop)
        return future.result(CALLBACK_TIMEOUT_SECONDS + 5)

    @cached_property
    def app(self) -> web.Application:
        """For aiohttp's test client or a runner of your own; start() builds a separate one."""
        return self.build_app()

    def start(self, port: int = 0, host: str | Sequence[str] = LOOPBACK) -> BackgroundServer:
        """Serves this fake from a background thread (on each address `host` names); the returned server is also
        a context manager."""
        if self.server is not None and self.server.is_running:
            raise RuntimeError(f"The fake {self.display_name} is already running at {self.server.url}.")
        self.server = BackgroundServer(self.build_app(), port, host).start()
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
        Notes when the request arrived, as `request[RECEIVED_AT]`, for record().
        """
        request[RECEIVED_AT] = time.time()
        with self._lock:
            self._request_count += 1
            faults = self._faults
            draw = self._random.random()
        if faults.latency:
            await self._wait_out(faults.latency)
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

    async def _callbacks_view(self, request: web.Request) -> web.Response:
        return web.json_response({"callbacks": self.callbacks, "in_flight": self.callbacks_in_flight})

    async def _reset_view(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _config_view(self, request: web.Request) -> web.Response:
        return web.json_response(self.settings_as_dict())

    async def _configure_view(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("Send a JSON object of settings to change.")
            self.configure(**changes)
        except (ValueError, TypeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(self.settings_as_dict())
