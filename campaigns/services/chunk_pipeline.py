"""Many messages made in chunks, each prepared then stored: a campaign's fan-out and `send_bulk` both run on it.

Preparing a chunk (reading its rows, checking and rendering its messages) is Python and writes nothing, so chunks
can be prepared side by side. Storing one (its claim and its INSERTs, in one transaction) is where order may
matter: a campaign claims its chunks by moving a cursor, so each claim waits until the chunk before is committed
(PostgreSQL re-checks a conditional UPDATE against committed rows only: a claim made earlier would find the cursor
not yet moved). `pipeline_run` chooses where the work runs:

- in forked processes (more than one asked, and `forking_possible()`: PostgreSQL, outside a transaction): this
  process reads the chunks and hands them out; each process prepares one, waits for its turn if the pipeline is
  `ordered`, stores it and passes the turn on. Preparing runs on every core; ordered stores one after another.
- in this process otherwise: chunk n+1 is prepared while writer threads with their own connections store the
  chunks before (on PostgreSQL outside a transaction; elsewhere every write must use this connection). An ordered
  pipeline has one writer, so each store still follows the one before; an unordered one BULK_WRITERS (2), so the
  database's work on one chunk (COPY, indexes, commit) runs beside the next's.

Either way a store that loses its claim ends the run: no chunk is handed out after it.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from django.db import connection

from deliveries.db.features import parallel_writers_possible
from deliveries.services.bulk import BULK_WRITERS

from .forked import fork_context, forking_possible, work_in_processes

Chunk = TypeVar("Chunk")
Prepared = TypeVar("Prepared")
Answer = TypeVar("Answer")


@dataclass(frozen=True)
class Stored(Generic[Answer]):
    """What storing a chunk came to. `claimed` is False when the chunk was not this run's to store (a campaign
    paused, cancelled, or fanned out by another run meanwhile): the run stops there, and its caller looks again."""

    answer: Answer
    claimed: bool = True


class ChunkPipeline(ABC, Generic[Chunk, Prepared, Answer]):
    """The hooks of a job that makes messages in chunks; `pipeline_run` calls them.

    The object is forked with the processes: what it holds when the run starts, they hold too; what a process
    changes stays in that process. Only `chunks` and `collect` always run in the process that called the run.
    """

    # True: chunks are stored in their order, each once the one before is committed.
    ordered: ClassVar[bool] = False

    @abstractmethod
    def chunks(self, *, handed_out: bool) -> Iterator[Chunk]:
        """The chunks, in order, read lazily in the calling process. `handed_out`: they go to other processes, so
        each should be what they need to read their rows (bounds), not the rows themselves."""

    @abstractmethod
    def prepare(self, chunk: Chunk) -> Prepared:
        """Read what the chunk still needs, check and render its messages. Writes nothing."""

    @abstractmethod
    def store(self, prepared: Prepared) -> Stored[Answer]:
        """Claim the prepared chunk and store its messages, in one transaction of its own."""

    @abstractmethod
    def collect(self, answer: Answer) -> None:
        """Take in a stored chunk's answer, in the calling process, in the order the stores finish."""


def pipeline_run(pipeline: ChunkPipeline, *, processes: int) -> bool:
    """Prepare and store every chunk of `pipeline`: in `processes` forked processes if more than one and
    forking_possible(), in this process otherwise. Returns whether every chunk was stored (False: a claim was
    lost). Raises forked.ProcessFailed when a process's work raised or a process stopped; in this process, what
    the hooks raise."""
    if processes > 1 and forking_possible():
        return _run_forked(pipeline, processes)
    return _run_here(pipeline)


def _run_here(pipeline: ChunkPipeline) -> bool:
    # Inside a transaction, or on SQLite, every write must go through this thread's connection.
    overlap = parallel_writers_possible()
    writers = _Writers(1 if pipeline.ordered else BULK_WRITERS) if overlap else None
    in_flight: deque[Future] = deque()
    try:
        for chunk in pipeline.chunks(handed_out=False):
            prepared = pipeline.prepare(chunk)  # while the writers store the chunks before
            if writers is None:
                if not _collected(pipeline, pipeline.store(prepared)):
                    return False
                continue
            if len(in_flight) == writers.count and not _collected(pipeline, in_flight.popleft().result()):
                return False
            in_flight.append(writers.submit(pipeline.store, prepared))
        while in_flight:
            if not _collected(pipeline, in_flight.popleft().result()):
                return False
        return True
    finally:
        if writers is not None:
            writers.close()


def _collected(pipeline: ChunkPipeline, stored: Stored) -> bool:
    pipeline.collect(stored.answer)
    return stored.claimed


class _Writers:
    """Threads storing chunks in turn, each on its own connection, closed with them. Answers are taken in the
    order the chunks were handed over, whichever thread finishes first."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._threads = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"chunk-writer-{n}") for n in range(count)
        ]
        self._handed = 0

    def submit(self, store: Callable[[Any], Stored[Any]], prepared: Any) -> Future[Stored[Any]]:
        thread = self._threads[self._handed % self.count]
        self._handed += 1
        return thread.submit(store, prepared)

    def close(self) -> None:
        for thread in self._threads:
            with contextlib.suppress(Exception):
                # A lambda, so that `connection` is looked up in the writer's thread: its own connection.
                thread.submit(lambda: connection.close()).result()
            thread.shutdown()


def _run_forked(pipeline: ChunkPipeline, processes: int) -> bool:
    turns = _Turns(ordered=pipeline.ordered)

    def handed_out() -> Iterator[tuple[int, object]]:
        chunks = pipeline.chunks(handed_out=True)
        index = 0
        while not turns.stopped:  # looked at before each chunk is read: nothing more is read once it stops
            chunk = next(chunks, None)
            if chunk is None:
                return
            yield index, chunk
            index += 1

    def prepare_and_store(numbered: tuple[int, object]) -> Stored | None:
        index, chunk = numbered
        prepared = pipeline.prepare(chunk)
        if not turns.wait_for(index):
            return None
        try:
            stored = pipeline.store(prepared)
        except BaseException:
            turns.stop()
            raise
        turns.done(index, claimed=stored.claimed)
        return stored

    def collect(stored: Stored | None) -> None:
        if stored is not None:
            pipeline.collect(stored.answer)

    work_in_processes(handed_out(), prepare_and_store, processes=processes, on_answer=collect, on_stop=turns.stop)
    return not turns.stopped


class _Turns:
    """Shared by the forked processes of one run: which chunk's store may go next, and whether the run stopped (a
    claim lost, a process failed). Only an ordered pipeline's processes wait for their turn."""

    def __init__(self, *, ordered: bool) -> None:
        fork = fork_context()
        self.ordered = ordered
        self._changed = fork.Condition()
        self._next = fork.Value("q", 0, lock=False)  # the index of the chunk whose store may go next
        self._stopped = fork.Value("b", 0, lock=False)
        self._parent = os.getpid()

    @property
    def stopped(self) -> bool:
        return bool(self._stopped.value)

    def wait_for(self, index: int) -> bool:
        """Wait until chunk `index` may be stored. False: the run stopped meanwhile (or the process that started
        it is gone), so the chunk is not to be stored."""
        if not self.ordered:
            return True
        with self._changed:
            while self._next.value != index and not self._stopped.value and os.getppid() == self._parent:
                self._changed.wait(timeout=1)
            return self._next.value == index and not self._stopped.value

    def done(self, index: int, *, claimed: bool) -> None:
        """Chunk `index` is stored (committed); or, not `claimed`, it was not this run's: stop."""
        if claimed and not self.ordered:
            return
        with self._changed:
            if claimed:
                self._next.value = index + 1
            else:
                self._stopped.value = 1
            self._changed.notify_all()

    def stop(self) -> None:
        self._stopped.value = 1
        # Not forever: a process killed while holding the lock would hold it still; the others look every second.
        if self._changed.acquire(timeout=5):
            self._changed.notify_all()
            self._changed.release()
