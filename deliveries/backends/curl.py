"""Provider HTTP calls kept in flight together on libcurl's multi interface (pycurl), from one thread.

A backend with `supports_async` writes its send as a coroutine whose only awaits are `HttpCall`s (through
`http_call()`); the worker's call pool hands those coroutines to a `CallDriver`, which starts each one, gives
libcurl the request it yields, and resumes it with the answer. libcurl does the HTTP work in C (connections
kept alive and shared, TLS), so a call costs about 0.2 ms of CPU with the twilio client around it, where
aiohttp on an asyncio loop cost about 0.35 ms (docs/performance.md). There is no event loop and no thread of
its own: the driver runs when the pool is asked for results, and responses that arrive meanwhile wait in their
sockets.

Because of that, a call's timeout is the driver's, not libcurl's: a call is timed out only once the driver has
read every answer waiting in its sockets and this call's is not among them. A thread held up elsewhere (a slow
database write) therefore never turns an answer that did arrive into a timeout, which would send the message
again. libcurl keeps a later limit of its own, as a backstop.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Coroutine, Generator
from typing import Any

import certifi
import pycurl  # type: ignore[import-untyped]  # no stubs published

# libcurl's own limit, past the driver's: only reached if the driver is not driving at all.
BACKSTOP_SECONDS = 60


class HttpCallError(Exception):
    """The call got no HTTP answer: refused, reset, timed out. `code` is libcurl's error number."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code

    @property
    def timed_out(self) -> bool:
        return self.code == pycurl.E_OPERATION_TIMEDOUT


class HttpCall:
    """One request a coroutine waits on; awaiting it yields it to the driver and returns it answered."""

    __slots__ = (
        "method",
        "url",
        "body",
        "headers",
        "timeout",
        "proxy",
        "verify",
        "deadline",
        "status",
        "buffer",
        "error",
    )

    def __init__(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: list[str],
        timeout: float,
        proxy: str = "",
        verify: bool | str = True,
    ):
        self.method = method
        self.url = url
        self.body = body
        self.headers = headers
        self.timeout = timeout
        self.proxy = proxy
        self.verify = verify
        self.deadline = math.inf  # set when the call starts
        self.status = 0
        self.buffer = io.BytesIO()
        self.error: HttpCallError | None = None

    @property
    def text(self) -> str:
        return self.buffer.getvalue().decode()

    def __await__(self) -> Generator[HttpCall, None, HttpCall]:
        yield self
        if self.error is not None:
            raise self.error
        return self


async def http_call(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
    proxy: str = "",
    verify: bool | str = True,
) -> HttpCall:
    """Send a request from inside a coroutine run by a CallDriver; raises HttpCallError if no answer came.

    `proxy` is the proxy URL to go through ("" for none: the environment is not read here); `verify` is as in
    requests: True checks TLS certificates against certifi's bundle, a path against that bundle, False not at all.
    """
    lines = [f"{name}: {value}" for name, value in (headers or {}).items()]
    # libcurl would otherwise add "Expect: 100-continue" to large bodies and wait for the server's go-ahead.
    lines.append("Expect:")
    return await HttpCall(method.upper(), url, body, lines, timeout, proxy or "", verify)


class CallDriver:
    """Runs coroutines that await HttpCalls from the calling thread, with up to `concurrency` connections to a
    host (libcurl queues calls beyond that).

    `start()` runs a coroutine up to its first request; `send()` lets libcurl write the requests started;
    `finished()` drives the calls in flight until at least one coroutine has returned, and gives back every
    (key, return value) that is ready. A coroutine that awaits anything but an HttpCall gets a TypeError thrown
    into it.
    """

    def __init__(self, concurrency: int):
        self.multi = pycurl.CurlMulti()
        # Keep a connection per call in flight open between calls (libcurl's cache is shared by the handles).
        self.multi.setopt(pycurl.M_MAXCONNECTS, max(concurrency, 1))
        self.multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, max(concurrency, 1))
        self.idle: list[pycurl.Curl] = []
        self.running: dict[pycurl.Curl, tuple[Any, Coroutine, HttpCall]] = {}
        self.done: list[tuple[Any, Any]] = []
        self.next_deadline = math.inf
        # What each handle was last set up with beyond the request itself (see _prepare).
        self.shared_options: dict[pycurl.Curl, tuple] = {}

    def __enter__(self) -> CallDriver:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for handle, (_, coroutine, _) in list(self.running.items()):
            self.multi.remove_handle(handle)
            coroutine.close()
            handle.close()
        self.running.clear()
        for handle in self.idle:
            handle.close()
        self.idle.clear()
        self.shared_options.clear()
        self.multi.close()

    @property
    def in_flight(self) -> int:
        return len(self.running)

    def start(self, key: Any, coroutine: Coroutine) -> None:
        self._resume(key, coroutine)

    def send(self) -> None:
        """Let libcurl write what it can now (the requests just started), without waiting."""
        while self.multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass

    def finished(self, timeout: float | None = None) -> list[tuple[Any, Any]]:
        """Drive the calls until a coroutine returns (or `timeout` seconds pass); every one that has, as (key,
        value)."""
        wait_until = None if timeout is None else time.monotonic() + timeout
        while True:
            self.send()
            self._collect()
            now = time.monotonic()
            if now >= self.next_deadline:
                self._expire(now)  # after reading every answer there was: these got none in time
            if self.done or not self.running:
                break
            wait = self.multi.timeout() / 1000
            if wait < 0:
                wait = 1.0
            wait = max(min(wait, self.next_deadline - now), 0)
            if wait_until is not None:
                left = wait_until - time.monotonic()
                if left <= 0:
                    break
                wait = min(wait, left)
            self.multi.select(wait)
        done, self.done = self.done, []
        return done

    def _collect(self) -> None:
        while True:
            queued, answered, failed = self.multi.info_read()
            for handle in answered:
                key, coroutine, call = self._release(handle)
                call.status = handle.getinfo(pycurl.RESPONSE_CODE)
                self._resume(key, coroutine)
            for handle, code, message in failed:
                key, coroutine, call = self._release(handle)
                call.error = HttpCallError(code, message or f"libcurl error {code}")
                self._resume(key, coroutine)
            if not queued:
                return

    def _expire(self, now: float) -> None:
        expired = [handle for handle, (_, _, call) in self.running.items() if call.deadline <= now]
        for handle in expired:
            key, coroutine, call = self._release(handle)
            reason = f"Timed out: no answer within {call.timeout:g} seconds"
            call.error = HttpCallError(pycurl.E_OPERATION_TIMEDOUT, reason)
            self._resume(key, coroutine)
        self.next_deadline = min((call.deadline for _, _, call in self.running.values()), default=math.inf)

    def _release(self, handle: pycurl.Curl) -> tuple[Any, Coroutine, HttpCall]:
        self.multi.remove_handle(handle)
        self.idle.append(handle)
        return self.running.pop(handle)

    def _resume(self, key: Any, coroutine: Coroutine, error: BaseException | None = None) -> None:
        try:
            awaited = coroutine.throw(error) if error is not None else coroutine.send(None)
        except StopIteration as stop:
            self.done.append((key, stop.value))
            return
        if not isinstance(awaited, HttpCall):
            message = f"A coroutine run by CallDriver awaited {awaited!r}; only HttpCall is supported."
            self._resume(key, coroutine, TypeError(message))
            return
        handle = self.idle.pop() if self.idle else self._new_handle()
        self._prepare(handle, awaited)
        awaited.deadline = time.monotonic() + awaited.timeout
        self.next_deadline = min(self.next_deadline, awaited.deadline)
        self.running[handle] = (key, coroutine, awaited)
        self.multi.add_handle(handle)

    @staticmethod
    def _new_handle() -> pycurl.Curl:
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)  # no SIGALRM for timeouts: this may run in any thread
        return handle

    def _prepare(self, handle: pycurl.Curl, call: HttpCall) -> None:
        if call.method == "GET":
            handle.setopt(pycurl.HTTPGET, 1)
        else:
            handle.setopt(pycurl.POSTFIELDS, call.body or b"")
        handle.setopt(pycurl.URL, call.url)
        handle.setopt(pycurl.WRITEDATA, call.buffer)
        # A handle keeps its options from one call to the next, and the calls of one client share the rest (its
        # headers, proxy, TLS settings and timeout): they are set again only when they differ from the last call's.
        shared = (call.method, call.headers, call.proxy, call.verify, call.timeout)
        if self.shared_options.get(handle) == shared:
            return
        self.shared_options[handle] = shared
        if call.method in ("GET", "POST"):
            handle.unsetopt(pycurl.CUSTOMREQUEST)
        else:
            handle.setopt(pycurl.CUSTOMREQUEST, call.method)
        handle.setopt(pycurl.HTTPHEADER, call.headers)
        # Only the proxy the caller names: "" also stops libcurl reading http_proxy & co. from the environment.
        handle.setopt(pycurl.PROXY, call.proxy)
        handle.setopt(pycurl.CAINFO, call.verify if isinstance(call.verify, str) else certifi.where())
        handle.setopt(pycurl.SSL_VERIFYPEER, 1 if call.verify else 0)
        handle.setopt(pycurl.SSL_VERIFYHOST, 2 if call.verify else 0)
        # The driver times the call out (connecting included); libcurl's limits are the backstop.
        backstop_ms = int((call.timeout + BACKSTOP_SECONDS) * 1000)
        handle.setopt(pycurl.TIMEOUT_MS, backstop_ms)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, backstop_ms)
