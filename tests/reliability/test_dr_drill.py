"""The recovery drill (scripts/dr_drill.sh) in its quick mode: every drill loses nothing and sends nothing twice,
judged from the provider's receipts against the database; and the verdict itself counts what it should.

The drill runs its own PostgreSQL cluster and redis-server (it restarts and kills them), so it needs PostgreSQL's
server binaries; it runs in the PostgreSQL pass only, once (about 45 s).
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
from django.db import connection

from benchmarks.dr_drill.verdict import judge, recovery_times
from tests.support import ROOT

DRILLS = ["redis-lost", "postgres-fast", "postgres-immediate", "dump-restore", "provider-down", "worker-killed"]
QUICK_MESSAGES = 200

needs_servers = [
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="run once, in the PostgreSQL pass"),
    pytest.mark.skipif(
        not (os.environ.get("PG_BIN") or glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        reason="needs PostgreSQL's initdb and pg_ctl for a cluster of the drill's own",
    ),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server for a Redis of its own"),
]


@pytest.fixture(scope="module")
def quick_drill(tmp_path_factory):
    report = tmp_path_factory.mktemp("drill") / "drill.json"
    completed = subprocess.run(
        [str(ROOT / "scripts" / "dr_drill.sh"), "--quick", "--json", str(report)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-5000:]
    return {**json.loads(report.read_text()), "printed": completed.stdout}


def by_name(drill_report) -> dict:
    return {drill["name"]: drill for drill in drill_report["drills"]}


class TestQuickDrill:
    pytestmark = needs_servers

    def test_every_drill_ran_and_passed(self, quick_drill):
        assert [drill["name"] for drill in quick_drill["drills"]] == DRILLS
        assert quick_drill["passed"] is True
        assert quick_drill["mode"] == "quick"

    def test_each_message_reached_the_provider_exactly_once_and_is_recorded_sent(self, quick_drill):
        for drill in quick_drill["drills"]:
            verdict = drill["verdict"]
            # Counted from the fake's receipts (reached_provider) and the database's rows (statuses), not assumed.
            assert verdict["messages"] == QUICK_MESSAGES, drill["name"]
            assert verdict["reached_provider"] == QUICK_MESSAGES, drill["name"]
            assert verdict["lost"] == 0 and verdict["duplicates"] == 0, (drill["name"], verdict)
            assert verdict["unknown_receipts"] == 0, drill["name"]
            assert verdict["statuses"] == {"sent": QUICK_MESSAGES}, (drill["name"], verdict)
            assert drill["findings"] == [], (drill["name"], drill["findings"])

    def test_sending_resumed_after_each_fault_before_everything_was_drained(self, quick_drill):
        for drill in quick_drill["drills"]:
            if drill["name"] == "dump-restore":
                assert drill["times"] is None  # nothing was broken
                continue
            times = drill["times"]
            assert 0 <= times["rto_s"] <= times["drain_s"], (drill["name"], times)
        # Whether sending stops at all when Redis or PostgreSQL goes depends on what the workers had in hand; a
        # provider answering 503 for 2 s certainly stops it, and some calls meet the 503s.
        provider = by_name(quick_drill)["provider-down"]
        assert provider["times"]["outage_s"] >= 2
        assert provider["times"]["stall_s"] >= 1 and provider["times"]["rto_s"] >= 1, provider["times"]
        assert provider["figures"]["messages_by_attempts"]["1"] < QUICK_MESSAGES

    def test_calls_in_flight_when_postgres_or_a_worker_went_were_settled_through_review(self, quick_drill):
        drills = by_name(quick_drill)
        for name in ("postgres-fast", "postgres-immediate", "worker-killed"):
            review = drills[name]["review"]
            assert review["in_review"] == review["at_provider_marked_sent"] + review["not_at_provider_sent_again"]
        # A worker killed during its calls leaves them in doubt: at most its SEND_CONCURRENCY (4 here).
        assert drills["worker-killed"]["review"]["in_review"] <= 4

    def test_the_dump_restored_elsewhere_has_the_counts_of_its_moment(self, quick_drill):
        dump = by_name(quick_drill)["dump-restore"]
        assert dump["checks"] == {
            "restored_counts_match_the_dump_moment": True,
            "restored_database_has_every_migration": True,
        }
        at_dump = dump["figures"]["at_dump"]
        assert at_dump == dump["figures"]["after_restore"]
        # Taken mid-run: some messages sent, some still to send, and those went out after the dump.
        assert 0 < at_dump["messages_by_status"]["sent"] < QUICK_MESSAGES
        assert dump["figures"]["pending_at_dump_sent_since"] == QUICK_MESSAGES - at_dump["messages_by_status"]["sent"]
        assert dump["figures"]["dump_s"] > 0 and dump["figures"]["restore_s"] > 0

    def test_the_report_prints_one_line_per_drill(self, quick_drill):
        lines = quick_drill["printed"].splitlines()
        for name in DRILLS:
            (line,) = [line for line in lines if line.startswith(name + " ")]
            assert line.endswith("ok"), line


def test_the_verdict_counts_a_message_never_received_and_one_received_twice():
    rows = [
        (1, "+14155550001", "sent", 1),
        (2, "+14155550002", "sent", 1),  # the database says sent; the provider never had it
        (3, "+14155550003", "sent", 1),  # received twice
        (4, "+14155550004", "review", 1),  # in doubt, and it did go out
        (5, "+14155550005", "failed", 5),  # never went out: the person was not messaged
    ]
    receipts = [("+14155550001", 1.0), ("+14155550003", 2.0), ("+14155550003", 3.0), ("+14155550004", 4.0)]
    receipts.append(("+14155559999", 5.0))  # a number no message has

    verdict = judge(rows, receipts)

    assert (verdict.messages, verdict.reached_provider) == (5, 3)
    assert (verdict.lost, verdict.sent_but_not_received, verdict.lost_by_status) == (2, 1, {"failed": 1, "sent": 1})
    assert verdict.duplicates == 1
    assert verdict.unknown_receipts == 1
    assert (verdict.in_review, verdict.in_review_at_provider) == (1, 1)
    assert not verdict.ok
    assert judge(rows[:1], receipts[:1]).ok


def test_sending_resumes_at_the_end_of_the_first_silence_after_the_fault():
    # Calls in flight land just after the fault at 10.0; then nothing for 5 s; then a steady stream.
    receipts = [9.0, 9.9, 10.05, 10.1, 15.1, 15.2, 15.3, 17.0]
    times = recovery_times(receipts, fault_at=10.0, back_at=11.0, settled_at=18.0)
    assert (times.rto_s, times.outage_s, times.stall_s, times.drain_s) == (5.1, 1.0, 5.0, 8.0)

    steady = recovery_times([10.2, 10.4, 10.6], fault_at=10.0, back_at=10.0, settled_at=10.7)
    assert steady.rto_s == 0.0  # sending never stopped
    assert recovery_times([9.0], fault_at=10.0, back_at=10.5, settled_at=11.0).rto_s is None  # nothing left
