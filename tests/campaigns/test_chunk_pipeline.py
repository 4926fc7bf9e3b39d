"""The chunk pipeline's runner: chunks prepared then stored, in this process or in forked ones, in order when asked."""

import os
import time

import pytest
from django.db import connection

from campaigns.services.chunk_pipeline import ChunkPipeline, Stored, pipeline_run

pytestmark = pytest.mark.django_db(transaction=True)


class Numbers(ChunkPipeline):
    """Chunks 0..count-1; a store appends "<chunk> <pid>" to `log`; the chunk `lost` is not claimed."""

    def __init__(self, count, log, *, lost=None, slow_even_chunks=False):
        self.count, self.log, self.lost, self.slow_even_chunks = count, log, lost, slow_even_chunks
        self.handed = []
        self.answers = []

    def chunks(self, *, handed_out):
        for number in range(self.count):
            self.handed.append(number)
            yield number

    def prepare(self, chunk):
        if self.slow_even_chunks and chunk % 2 == 0:
            time.sleep(0.05)  # an earlier chunk prepared after a later one: its store must still go first
        return chunk * 10

    def store(self, prepared):
        chunk = prepared // 10
        with self.log.open("a") as file:
            file.write(f"{chunk} {os.getpid()}\n")
        return Stored(prepared, claimed=chunk != self.lost)

    def collect(self, answer):
        self.answers.append(answer)


class OrderedNumbers(Numbers):
    ordered = True


def stored(log):
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines()] if log.exists() else []


def test_in_one_process_an_ordered_pipeline_stores_and_collects_its_chunks_in_order(tmp_path):
    numbers = OrderedNumbers(5, tmp_path / "log")
    assert pipeline_run(numbers, processes=1) is True
    assert stored(numbers.log) == [(n, os.getpid()) for n in range(5)]
    assert numbers.answers == [0, 10, 20, 30, 40]


def test_in_one_process_a_lost_claim_stops_an_ordered_run_with_no_chunk_stored_after_it(tmp_path):
    numbers = OrderedNumbers(6, tmp_path / "log", lost=2)
    assert pipeline_run(numbers, processes=1) is False
    assert [chunk for chunk, _ in stored(numbers.log)] == [0, 1, 2]
    assert numbers.answers == [0, 10, 20]


def test_in_one_process_an_unordered_pipeline_stores_every_chunk_and_collects_them_in_order(tmp_path):
    numbers = Numbers(7, tmp_path / "log", slow_even_chunks=True)
    assert pipeline_run(numbers, processes=1) is True
    assert sorted(chunk for chunk, _ in stored(numbers.log)) == list(range(7))
    assert numbers.answers == [n * 10 for n in range(7)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="chunks go to forked processes on PostgreSQL")
def test_an_ordered_pipeline_in_processes_stores_its_chunks_in_order_in_the_processes(tmp_path):
    numbers = OrderedNumbers(12, tmp_path / "log", slow_even_chunks=True)
    assert pipeline_run(numbers, processes=3) is True
    log = stored(numbers.log)
    assert [chunk for chunk, _ in log] == list(range(12))
    assert os.getpid() not in {pid for _, pid in log}
    assert sorted(numbers.answers) == [n * 10 for n in range(12)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="chunks go to forked processes on PostgreSQL")
def test_in_processes_a_lost_claim_stops_an_ordered_run_with_no_chunk_stored_after_it(tmp_path):
    numbers = OrderedNumbers(40, tmp_path / "log", lost=3)
    assert pipeline_run(numbers, processes=2) is False
    assert [chunk for chunk, _ in stored(numbers.log)] == [0, 1, 2, 3]
    assert len(numbers.handed) < 40  # no more chunks read once it stopped


@pytest.mark.skipif(connection.vendor != "postgresql", reason="chunks go to forked processes on PostgreSQL")
def test_an_unordered_pipeline_in_processes_stores_and_collects_every_chunk(tmp_path):
    numbers = Numbers(12, tmp_path / "log", slow_even_chunks=True)
    assert pipeline_run(numbers, processes=3) is True
    assert sorted(chunk for chunk, _ in stored(numbers.log)) == list(range(12))
    assert sorted(numbers.answers) == [n * 10 for n in range(12)]
