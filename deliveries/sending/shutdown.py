"""A SIGTERM during a send job stops it after the provider calls in flight instead of killing it mid-call."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

# Set by SIGTERM during a job: claim nothing more, finish and record the calls in flight, return.
_stop_requested = threading.Event()


def stop_requested() -> bool:
    """Whether SIGTERM asked the running job to stop."""
    return _stop_requested.is_set()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """While a job runs, SIGTERM stops it after the provider calls in flight instead of killing it mid-call.

    RQ already lets the worker finish its job on SIGTERM (warm shutdown), but the job runs in a forked work horse
    that dies at once if it gets the signal too, as it does when the platform signals every process (systemd,
    Heroku, `kill` of the process group). Messages the job had not reached stay `queued` for the reconciler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        _stop_requested.set()
        if callable(previous):  # in-process workers: RQ's own warm shutdown
            previous(signum, frame)

    signal.signal(signal.SIGTERM, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_requested.clear()
