"""Archiving at size and under fire (PostgreSQL): 100,000 messages archived and restored identical with the
figures unchanged; `archive_messages` SIGKILLed again and again and run again, losing and duplicating nothing; two
dispatchers' daily passes at once, taking turns."""

import os
import random
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from analytics.services.rollup import analytics_rollup
from campaigns.models import Campaign
from deliveries.models import Batch, Message, MessageEvent
from deliveries.services.restore import messages_restore
from tests.deliveries.archive_support import (
    archived_ids,
    figures,
    seed_old_messages,
    seed_old_messages_on_server,
    table_dump,
)
from tests.support import process_env, start_manage, stop, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="tens of thousands of rows: PostgreSQL only"),
]


@pytest.fixture
def campaign():
    return Campaign.objects.create(
        name="Old news", status=Campaign.Status.COMPLETED, completed_at=timezone.now(), summary_sent_at=timezone.now()
    )


def test_100000_messages_archived_and_restored_identical_with_the_figures_unchanged(tmp_path, campaign):
    started = time.monotonic()
    batch = Batch.objects.create(kind=Batch.Kind.CSV, key="old-file")
    # The campaign's 900 messages stay under the page's SMS sample (1,000): its segment count is exact.
    ids = seed_old_messages(2700, campaign=campaign, batch=batch, chains=50)
    ids += seed_old_messages_on_server(97_300, campaign=None, batch=batch)
    analytics_rollup()
    before, shown = table_dump(), figures(campaign, batch)
    seeded = time.monotonic()

    result = start_manage("archive_messages", "--older-than", "90d", "--to", str(tmp_path), env=process_env())
    result.wait(timeout=600)
    output = stop(result)
    archived = time.monotonic()
    assert result.returncode == 0, output
    assert "Archived 100000 message(s)" in output, output
    assert not Message.objects.exists()
    assert figures(campaign, batch) == shown

    report = messages_restore(paths=list(tmp_path.iterdir()))
    restored = time.monotonic()
    assert (report.messages, report.waiting) == (100_000, {})
    assert table_dump() == before
    assert figures(campaign, batch) == shown
    analytics_rollup()
    assert figures(campaign, batch) == shown
    print(
        f"\n100,000 messages ({MessageEvent.objects.count()} events): seeded in {seeded - started:.1f} s, archived in "
        f"{archived - seeded:.1f} s ({sum(p.stat().st_size for p in tmp_path.iterdir()) / 1e6:.1f} MB in "
        f"{len(list(tmp_path.iterdir()))} files), restored in {restored - archived:.1f} s"
    )


def test_archiving_killed_again_and_again_loses_nothing_and_duplicates_nothing(tmp_path, campaign):
    ids = seed_old_messages(6000, campaign=campaign, chains=100)
    analytics_rollup()
    before, shown = table_dump(), figures(campaign)
    env = process_env()
    chance = random.Random(23)
    command = ("archive_messages", "--older-than", "90d", "--to", str(tmp_path), "--chunk-size", "200")
    kills = 0
    while Message.objects.exists() and kills < 6:
        process = start_manage(*command, env=env)
        left = Message.objects.count()
        # Killed once it has deleted a chunk, a moment later: sometimes mid-write, sometimes between fsync and commit.
        wait_for(
            lambda left=left, process=process: Message.objects.count() < left or process.poll() is not None,
            timeout=120,
        )
        time.sleep(chance.uniform(0, 0.3))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        stop(process)
    final = start_manage(*command, env=env)
    assert final.wait(timeout=120) == 0, stop(final)
    assert kills >= 3, "the archive finished before it could be killed often enough"
    assert not Message.objects.exists()
    assert sorted(archived_ids(tmp_path)) == sorted(ids)  # each message in the files once
    assert figures(campaign) == shown

    report = messages_restore(paths=list(tmp_path.iterdir()))
    assert report.messages == 6000
    assert table_dump() == before
    print(f"\n{kills} kills, then a full run: every message archived once, restored identical")


def test_two_dispatchers_passes_take_turns_and_archive_each_message_once(tmp_path, settings):
    ids = seed_old_messages(6000, days_old=40)
    analytics_rollup()
    env = process_env(ARCHIVE_AFTER_DAYS="30", ARCHIVE_DIR=str(tmp_path), ANALYTICS_ROLLUP_INTERVAL="0")
    dispatchers = [start_manage("run_dispatcher", env=env) for _ in range(2)]
    try:
        wait_for(lambda: not Message.objects.exists(), timeout=90, interval=0.5, message="the pass to archive all")
    finally:
        outputs = [stop(process) for process in dispatchers]
    assert sorted(archived_ids(tmp_path)) == sorted(ids), outputs
    assert all("Traceback" not in output for output in outputs), outputs


def test_a_pass_resumes_where_it_stopped(tmp_path, settings, monkeypatch):
    from deliveries.models import ArchiveCursor
    from deliveries.services import archive as archive_service

    seed_old_messages(12_000, days_old=40)
    analytics_rollup()
    settings.ARCHIVE_AFTER_DAYS, settings.ARCHIVE_DIR = 30, str(tmp_path)
    monkeypatch.setattr(archive_service, "TICK_BUDGET_SECONDS", 0)  # one chunk a tick
    archive_service.archive_tick()
    cursor = ArchiveCursor.objects.get()
    assert Message.objects.count() == 12_000 - archive_service.CHUNK_SIZE
    assert cursor.cutoff is not None and cursor.position_id is not None
    while ArchiveCursor.objects.get().cutoff is not None:
        archive_service.archive_tick()
    assert not Message.objects.exists() and len(archived_ids(tmp_path)) == 12_000
    assert ArchiveCursor.objects.get().finished_at > timezone.now() - timedelta(minutes=5)
