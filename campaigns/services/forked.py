"""Tasks done in forked processes while this one hands them out: how the chunk pipeline runs on every core.

Checking, rendering and storing messages is Python, and one Python process keeps one core busy at most. The
processes are forked, not spawned: each starts at once with Django set up and the run's data in memory. This
process closes its database connections first, so that none is shared; each process opens its own. There is no
fork on Windows: callers check `FORK` and do the work themselves there.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.context import ForkContext
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue as ProcessQueue
from typing import Any

from django.db import connections

from deliveries.db.features import parallel_writers_possible

FORK = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
# Chunks handed out ahead of the processes, per process: enough that none waits, few enough for memory.
READ_AHEAD = 2


def fork_context() -> ForkContext:
    """The fork start method's context; only where forking_possible() said yes."""
    if FORK is None:
        raise RuntimeError("This platform cannot fork: check forking_possible() first.")
    return FORK


def forking_possible() -> bool:
    """Whether work can be spread over forked processes here: the platform forks, and each process can open its
    own connection and see what this one committed (PostgreSQL, outside a transaction: the rows of an open one
    would be invisible to them; SQLite takes one writer at a time)."""
    return FORK is not None and parallel_writers_possible()


class ProcessFailed(Exception):
    """A process's work raised (`error`: its type and text), or a process stopped (`exit_code`)."""

    def __init__(self, *, error: str = "", exit_code: int | None = None):
        super().__init__(error or f"a process stopped (exit code {exit_code})")
        self.error, self.exit_code = error, exit_code


def work_in_processes(
    tasks: Iterable,
    work: Callable[[Any], Any],
    *,
    processes: int,
    on_answer: Callable[[Any], None],
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Run `work(task)` for each of `tasks` in `processes` forked processes, a task each at a time, and call
    `on_answer(answer)` here for each answer, in the order they come. Raises ProcessFailed when a task's work
    raised or a process stopped; also stops on any exception from `tasks` or `on_answer` (and on Ctrl-C). When
    it stops early, the processes finish the tasks already handed to them and exit (`on_stop` is called first,
    to release any that wait on each other), so that none is cut in the middle of one."""
    fork = fork_context()
    connections.close_all()
    inbox = fork.Queue(maxsize=processes * READ_AHEAD)
    answers = fork.Queue()
    workers = [fork.Process(target=_worker_loop, args=(inbox, answers, work), daemon=True) for _ in range(processes)]
    # Objects that exist now are left out of the processes' garbage collections: collecting would write to every
    # one of them (its gc header), copying this process's memory page by page into each process, and rescan
    # Django's hundreds of thousands of objects at each full collection (together a sixth of a row's cost).
    gc.freeze()
    try:
        for worker in workers:
            worker.start()
    finally:
        gc.unfreeze()
    handed = answered = 0

    def take_answers(wait: bool) -> None:
        nonlocal answered
        while answered < handed:
            try:
                answer = answers.get(timeout=0.5) if wait else answers.get_nowait()
            except queue.Empty:
                stopped = [worker.exitcode for worker in workers if worker.exitcode not in (None, 0)]
                if stopped:
                    raise ProcessFailed(exit_code=stopped[0]) from None
                if wait:
                    continue
                return
            if answer[0] == "error":
                raise ProcessFailed(error=answer[1])
            answered += 1
            on_answer(answer[1])

    def hand_over(task: Any) -> None:
        """Put `task` in the inbox, taking answers while it is full (and noticing a process that died)."""
        while True:
            try:
                inbox.put(task, timeout=0.5)
                return
            except queue.Full:
                take_answers(wait=False)

    try:
        for task in tasks:
            hand_over(task)
            handed += 1
            take_answers(wait=False)
        for _ in workers:
            hand_over(None)
        take_answers(wait=True)
    except BaseException:
        if on_stop is not None:
            on_stop()
        _stop_after_their_tasks(inbox, answers, workers)
        raise
    finally:
        for worker in workers:
            worker.join()


def _stop_after_their_tasks(
    inbox: ProcessQueue[Any], answers: ProcessQueue[Any], workers: Sequence[BaseProcess], *, patience: float = 60
) -> None:
    """Stop the processes once they have done the tasks already handed to them (at most a few each), so that
    none is cut between storing a chunk and queueing its messages: killed there, its messages would wait for
    the reconciler. One still busy after `patience` seconds is killed; its open transaction is rolled back."""
    deadline = time.monotonic() + patience
    with contextlib.suppress(queue.Full, ValueError):
        for _ in workers:
            inbox.put(None, timeout=max(deadline - time.monotonic(), 0.1))
    while any(worker.is_alive() for worker in workers) and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            answers.get(timeout=0.2)  # read and dropped: a process exits only once its answers are handed over
    for worker in workers:
        if worker.is_alive():
            worker.terminate()


def _worker_loop(inbox: ProcessQueue[Any], answers: ProcessQueue[Any], work: Callable[[Any], Any]) -> None:
    """A forked process's loop: a task in, its answer out, until told there is no more (or this process's
    parent is gone: one killed outright leaves no process behind)."""
    # Ctrl-C reaches the whole process group: the parent stops the processes itself, without their tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    try:
        while True:
            try:
                task = inbox.get(timeout=1)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if task is None:
                return
            try:
                answer = work(task)
            except Exception as error:  # noqa: BLE001 - reported to the parent, which stops the run
                answers.put(("error", f"{type(error).__name__}: {error}"))
                return
            answers.put(("ok", answer))
    finally:
        connections.close_all()
