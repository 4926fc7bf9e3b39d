"""The counters behind the sizing figures (docs/operations.md#sizing) count what they say: statements and round
trips through the PostgreSQL forwarder, and the WAL of one database read back from pg_waldump's output."""

import psycopg
import pytest
from django.db import connection

from benchmarks.wal_meter import database_wal_bytes
from benchmarks.wire_counter import CountingForwarder


@pytest.fixture
def forwarder(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: the forwarder speaks its protocol")
    settings = connection.settings_dict
    with CountingForwarder(
        [("h1", "127.0.0.1")], (settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432))
    ) as f:
        yield f


def connect(forwarder):
    settings = connection.settings_dict
    return psycopg.connect(
        host="127.0.0.1",
        port=forwarder.port_of("h1"),
        user=settings["USER"],
        password=settings.get("PASSWORD") or None,
        dbname=settings["NAME"],
        sslmode="disable",
        autocommit=True,
    )


def test_the_forwarder_counts_each_statement_and_a_pipeline_as_one_round_trip(forwarder):
    with connect(forwarder) as client:
        after_startup = forwarder.snapshot()["h1"]
        client.execute("SELECT 1")
        client.execute("SELECT %s", [2])
        with client.pipeline():
            for value in range(5):
                client.execute("SELECT %s", [value])
        counts = forwarder.snapshot()["h1"]

    assert counts.connections == 1
    assert counts.statements - after_startup.statements == 7
    # One each for the two statements, one for the pipeline (psycopg may flush it in two: at most two).
    assert 3 <= counts.round_trips - after_startup.round_trips <= 4


def test_the_forwarder_passes_answers_through_unchanged(forwarder):
    with connect(forwarder) as client:
        rows = client.execute("SELECT generate_series(1, 50000)").fetchall()
    assert len(rows) == 50000 and rows[-1] == (50000,)


# pg_waldump's lines, with the LSNs and some of the descriptions shortened.
WALDUMP = """\
rmgr: Heap  len (rec/tot):  54/ 734, tx: 9964, lsn: 0/1, desc: INSERT off 8, blkref #0: rel 1663/16386/2615 blk 0 FPW
rmgr: Btree len (rec/tot):  64/  64, tx: 9964, lsn: 0/2, desc: INSERT_LEAF off 6, blkref #0: rel 1663/16386/2685 blk 1
rmgr: Heap  len (rec/tot):  79/  79, tx: 9965, lsn: 0/3, desc: INSERT off 9, blkref #0: rel 1663/5/1247 blk 14
rmgr: Transaction len (rec/tot): 34/ 34, tx: 9964, lsn: 0/4, desc: COMMIT 2026-12-07 18:40:00.000000 UTC
rmgr: Transaction len (rec/tot): 34/ 34, tx: 9965, lsn: 0/5, desc: COMMIT 2026-12-07 18:40:00.000001 UTC
rmgr: Heap2 len (rec/tot):  59/  59, tx:    0, lsn: 0/6, desc: PRUNE, blkref #0: rel 1663/16386/2615 blk 3
"""


def test_only_the_databases_records_and_their_commits_count_as_its_wal():
    total, full_pages = database_wal_bytes(WALDUMP, "16386")
    assert total == 734 + 64 + 34 + 59  # not database 5's insert, nor its transaction's commit
    assert full_pages == 734 - 54
    assert database_wal_bytes(WALDUMP, "5") == (79 + 34, 0)
