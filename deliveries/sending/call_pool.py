"""The calls in flight: each claimed message's provider call, run beside the thread that records the outcomes."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings

from messaging_project.log_context import log_context

from ..backends.base import BaseBackend, OutgoingMessage, SendResult
from ..backends.curl import CallDriver
from ..exceptions import DeliveryError, TransientDeliveryError

logger = logging.getLogger(__name__)


class CallPool:
    """Runs provider calls beside the recording thread's work; their results come back through `results`.

    A backend with an async client (`supports_async`) has its calls run by a CallDriver on libcurl's multi
    interface in this same thread: hundreds in flight for the CPU of a few, and no hand-over between threads at
    all; responses that arrive while the thread writes to the database wait in their sockets. The others get a
    thread pool (at most SEND_THREADS threads), whose results come back through a queue. Nothing here touches
    the database.
    """

    def __init__(self, backend: BaseBackend, size: int):
        self.backend = backend
        self.size = size
        self.driver: CallDriver | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.done: queue.SimpleQueue[tuple[Any, SendResult]] = queue.SimpleQueue()

    def __enter__(self) -> CallPool:
        self.backend.open()
        if self.backend.supports_async:
            self.driver = CallDriver(self.size)
        else:
            self.executor = ThreadPoolExecutor(max_workers=min(self.size, settings.SEND_THREADS))
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.driver is not None:
                self.driver.close()
            elif self.executor is not None:
                self.executor.shutdown(wait=True)
        finally:
            self.backend.close()

    def start(self, calls: list[tuple[Any, OutgoingMessage]]) -> None:
        """Start a call for each (key, message); each result comes back from `results` as (key, result)."""
        if not calls:
            return
        if self.driver is not None:
            for key, message in calls:
                self.driver.start(key, self._call_async(message))
            self.driver.send()
        elif self.executor is not None:
            for key, message in calls:
                # In a copy of this thread's log context (job, channel, provider), for what the call logs.
                self.executor.submit(contextvars.copy_context().run, self._call, key, message)

    def results(self, timeout: float | None = None) -> list[tuple[Any, SendResult]]:
        """Wait for a call to finish, then take every result that has come back (never waiting for more)."""
        if self.driver is not None:
            return self.driver.finished(timeout)
        try:
            finished = [self.done.get(timeout=timeout)]
        except queue.Empty:
            return []
        with contextlib.suppress(queue.Empty):
            while True:
                finished.append(self.done.get_nowait())
        return finished

    def _call(self, key: Any, message: OutgoingMessage) -> None:
        started = time.perf_counter()
        try:
            with log_context(message_id=message.id, attempt=message.attempt):
                result = self.backend.send(message)
        except DeliveryError as error:
            result = SendResult(message_id=message.id, provider=self.backend.provider_name, error=error)
        except Exception as error:  # a bug or an unforeseen library error: keep the batch going, retry later
            result = self._unexpected(message, error)
        result.call_seconds = time.perf_counter() - started
        self.done.put((key, result))

    async def _call_async(self, message: OutgoingMessage) -> SendResult:
        started = time.perf_counter()
        try:
            result = await self.backend.send_async(message)
        except DeliveryError as error:
            result = SendResult(message_id=message.id, provider=self.backend.provider_name, error=error)
        except Exception as error:  # a bug or an unforeseen library error: keep the batch going, retry later
            result = self._unexpected(message, error)
        result.call_seconds = time.perf_counter() - started
        return result

    def _unexpected(self, message: OutgoingMessage, error: Exception) -> SendResult:
        with log_context(message_id=message.id, attempt=message.attempt, recipient=message.recipient):
            logger.exception("Unexpected error sending message %s through %s", message.id, self.backend.provider_name)
        wrapped = TransientDeliveryError(f"Unexpected error: {error!r}", provider=self.backend.provider_name)
        return SendResult(message_id=message.id, provider=self.backend.provider_name, error=wrapped)
