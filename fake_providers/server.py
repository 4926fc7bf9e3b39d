"""Run an aiohttp application in a background thread, so synchronous tests and scripts can talk to it over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from types import TracebackType

from aiohttp import web

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 1.0


class BackgroundServer:
    """Serves `app` on 127.0.0.1 from a daemon thread with its own event loop; port 0 picks a free port.

    `host` may name several addresses (a sequence): the server listens on each, on the same port, as a service on
    a machine with several network interfaces does (tests/reliability/test_many_hosts.py reaches it from network
    namespaces, each through its own link). `url` names the first."""

    def __init__(self, app: web.Application, port: int = 0, host: str | Sequence[str] = LOOPBACK) -> None:
        self.app = app
        self.hosts = [host] if isinstance(host, str) else list(host)
        self.host = self.hosts[0]
        self.requested_port = port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("The server is not running; call start() first.")
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        """Returns once the socket is listening, so callers can send requests straight away."""
        if self._thread is not None:
            raise RuntimeError("The server is already running.")
        self._listening.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=f"fake-provider-{self.requested_port}", daemon=True)
        self._thread.start()
        if not self._listening.wait(STARTUP_TIMEOUT_SECONDS):
            raise RuntimeError(f"The server did not start listening within {STARTUP_TIMEOUT_SECONDS} seconds.")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Closes open connections and waits for the thread to end; safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(STARTUP_TIMEOUT_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STARTUP_TIMEOUT_SECONDS)
        self._thread = self._loop = self._runner = None
        self.port = None

    def __enter__(self) -> BackgroundServer:
        return self if self._thread is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._listen())
        except BaseException as error:  # re-raised in the thread that called start()
            self._startup_error = error
            self._listening.set()
            loop.close()
            return
        self._listening.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _listen(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
        await runner.setup()
        try:
            port = self.requested_port
            for host in self.hosts:
                site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
                await site.start()
                port = runner.addresses[0][1]  # the others on the port the first was given
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]


def wait_until_interrupted() -> None:
    """Blocks the main thread until Ctrl-C; the servers keep answering from their own threads meanwhile."""
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def serve_forever(app: web.Application, port: int = 0, host: str = LOOPBACK) -> None:
    """Serves one application until Ctrl-C, announcing its URL once it is listening."""
    with BackgroundServer(app, port, host) as server:
        print(f"Listening on {server.url} (Ctrl-C to stop)", flush=True)
        wait_until_interrupted()
