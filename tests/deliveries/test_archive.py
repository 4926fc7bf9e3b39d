"""Archiving and restoring messages: what is taken and what is kept, identical rows after a restore, unchanged
figures, the files, the commands' answers to bad input, and the dispatchers' daily pass."""

import gzip
import json
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from analytics.services.rollup import analytics_rollup
from campaigns.models import Campaign
from deliveries.models import ArchiveCursor, ArchivedMessageTally, ArchiveFile, Message, MessageEvent, Status
from deliveries.services.archive import archive_tick, messages_archive
from deliveries.services.restore import messages_restore
from deliveries.services.suppression import suppression_add
from tests.deliveries.archive_support import archived_ids, figures, seed_old_messages, table_dump
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return Campaign.objects.create(
        name="Old news", status=Campaign.Status.COMPLETED, completed_at=timezone.now(), summary_sent_at=timezone.now()
    )


def archive(directory: Path, **options):
    return messages_archive(older_than=timedelta(days=90), directory=directory, **options)


def test_finished_old_messages_go_to_day_files_and_come_back_identical(tmp_path, campaign):
    ids = seed_old_messages(60, campaign=campaign, chains=5)
    analytics_rollup()
    before, shown = table_dump(), figures(campaign)
    created = Message.objects.values_list("created_at", flat=True)
    days = {f"messages-{at.astimezone(UTC):%Y-%m-%d}.jsonl.gz" for at in created}

    report = archive(tmp_path, chunk_size=7)

    assert report.messages == 60 and report.events == MessageEvent.objects.count() + report.events
    assert not Message.objects.filter(pk__in=ids).exists()
    names = sorted(path.name for path in tmp_path.iterdir())
    assert set(names) == days
    assert sorted(archived_ids(tmp_path)) == sorted(ids)
    assert figures(campaign) == shown

    restored = messages_restore(paths=list(tmp_path.iterdir()))

    assert (restored.messages, restored.already_present, restored.waiting) == (60, 0, {})
    assert table_dump() == before
    assert figures(campaign) == shown
    assert not ArchivedMessageTally.objects.exists()
    analytics_rollup()  # the restored events are not counted again
    assert figures(campaign) == shown


def test_a_restore_run_twice_restores_nothing_twice(tmp_path):
    seed_old_messages(20)
    analytics_rollup()
    before = table_dump()
    archive(tmp_path)
    files = list(tmp_path.iterdir())

    first = messages_restore(paths=files)
    second = messages_restore(paths=files)

    assert (first.messages, second.messages, second.events, second.already_present) == (20, 0, 0, 20)
    assert table_dump() == before


def test_a_second_restore_over_many_chunks_counts_each_message_present_once_and_none_waiting(tmp_path):
    seed_old_messages(20, chains=3)
    analytics_rollup()
    archive(tmp_path, chunk_size=4)  # five chunks: each message already there must be done with in its own
    files = list(tmp_path.iterdir())
    messages_restore(paths=files)

    again = messages_restore(paths=files)

    assert (again.messages, again.already_present, again.waiting) == (0, 20, {})


def test_each_line_names_its_model_and_every_field(tmp_path):
    [pk] = seed_old_messages(1)
    analytics_rollup()
    archive(tmp_path)
    [path] = tmp_path.iterdir()
    with gzip.open(path, "rt") as handle:
        lines = [json.loads(line) for line in handle]
    assert [line["model"] for line in lines] == ["deliveries.message"] + ["deliveries.messageevent"] * 3
    assert lines[0]["pk"] == pk
    assert set(lines[0]["fields"]) == {f.name for f in Message._meta.concrete_fields} - {"id"}
    assert "." in lines[0]["fields"]["created_at"]  # microseconds kept


def test_what_can_still_change_is_never_archived(tmp_path):
    old = timezone.now() - timedelta(days=120)
    kept = [
        MessageFactory(status=status)
        for status in (Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.SENT, Status.REVIEW, Status.WAITING)
    ]
    recent = MessageFactory(status=Status.DELIVERED)
    Message.objects.filter(pk__in=[m.pk for m in kept]).update(created_at=old, updated_at=old)
    archive(tmp_path)
    assert Message.objects.count() == len(kept) + 1
    assert recent.pk in set(Message.objects.values_list("pk", flat=True))


def test_held_messages_stay_with_their_reason(tmp_path, campaign):
    running = Campaign.objects.create(name="Still going", status=Campaign.Status.RUNNING)
    suppressed_by = Message.objects.get(pk=seed_old_messages(1)[0])
    suppression_add(channel="sms", address="+14155550199", reason="opt_out", source="test", message=suppressed_by)
    of_running = seed_old_messages(3, campaign=running)  # the campaign is on every third message: the first
    analytics_rollup()
    uncounted = seed_old_messages(2)  # made after the rollup's last run: their events are not counted yet

    report = archive(tmp_path)

    assert report.held == {
        "a suppression entry points to it": 1,
        "its campaign is not over (or its summary not sent)": 1,
        "the analytics rollup has not counted its events yet": 2,
    }
    assert set(Message.objects.values_list("pk", flat=True)) == {suppressed_by.pk, of_running[0], *uncounted}


def test_a_message_another_depends_on_stays_while_that_one_stays(tmp_path):
    parent, child = seed_old_messages(2, chains=1)
    recent_child = MessageFactory(status=Status.QUEUED, depends_on_id=seed_old_messages(1)[0])
    analytics_rollup()
    report = archive(tmp_path)
    assert set(Message.objects.values_list("pk", flat=True)) == {recent_child.pk, recent_child.depends_on_id}
    assert report.messages == 2  # the parent and its child, the child first
    restored = messages_restore(paths=list(tmp_path.iterdir()))
    assert restored.messages == 2 and Message.objects.get(pk=child).depends_on_id == parent


def test_a_restored_message_whose_parent_is_in_no_file_waits_and_is_named(tmp_path):
    parent, child = seed_old_messages(2, chains=1)
    a_day_later = Message.objects.get(pk=child).created_at + timedelta(days=1)
    Message.objects.filter(pk=child).update(created_at=a_day_later, updated_at=a_day_later)
    analytics_rollup()
    archive(tmp_path)
    parent_file, child_file = sorted(tmp_path.iterdir())

    with pytest.raises(CommandError, match=f"#{child} \\(needs #{parent}\\)"):
        call_command("restore_messages", str(child_file), "--no-progress")
    assert not Message.objects.exists()

    call_command("restore_messages", str(child_file), str(parent_file), "--no-progress")
    assert Message.objects.get(pk=child).depends_on_id == parent


def test_links_to_rows_deleted_since_come_back_empty(tmp_path, campaign):
    ids = seed_old_messages(3, campaign=campaign)
    analytics_rollup()
    archive(tmp_path)
    Campaign.objects.filter(pk=campaign.pk).delete()
    report = messages_restore(paths=list(tmp_path.iterdir()))
    assert report.unlinked == {"campaign": 1}
    assert set(Message.objects.filter(pk__in=ids).values_list("campaign_id", flat=True)) == {None}


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(tmp_path, capsys):
    seed_old_messages(12)
    analytics_rollup()
    before = table_dump()
    call_command("archive_messages", "--older-than", "90d", "--to", str(tmp_path / "a"), "--dry-run", "--no-progress")
    out = capsys.readouterr().out
    assert "Would archive 12 message(s)" in out and "Dry run: nothing was written or deleted." in out
    assert table_dump() == before
    assert not (tmp_path / "a").exists() and not ArchiveFile.objects.exists()


@pytest.mark.parametrize(
    "age, says",
    [
        ("ninety", "give days or hours, like 90d or 240h"),
        ("90", "give days or hours"),
        ("-3d", "give days or hours"),
        ("6d", "too recent"),
        ("100h", "too recent"),
    ],
)
def test_bad_ages_are_refused_in_one_line(age, says):
    with pytest.raises(CommandError, match=says) as refused:
        call_command("archive_messages", f"--older-than={age}", "--no-progress")
    assert "\n" not in str(refused.value)


def test_a_missing_or_foreign_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("restore_messages", str(tmp_path / "nope.jsonl.gz"), "--no-progress")
    foreign = tmp_path / "other.jsonl.gz"
    foreign.write_bytes(gzip.compress(b'{"model": "auth.user", "pk": 1, "fields": {}}\n'))
    with pytest.raises(CommandError, match="not restored by this command"):
        call_command("restore_messages", str(foreign), "--no-progress")
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(b"not gzip at all")
    with pytest.raises(CommandError, match="damaged"):
        call_command("restore_messages", str(damaged), "--no-progress")


def test_an_unwritable_directory_is_refused_with_what_to_do(tmp_path):
    seed_old_messages(1)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CommandError, match="Cannot create the archive directory .* give another"):
        call_command("archive_messages", "--older-than", "90d", "--to", str(blocker / "dir"), "--no-progress")


def test_a_file_moved_away_gets_a_new_part_and_a_shortened_one_is_refused(tmp_path):
    seed_old_messages(1, days_old=100)
    analytics_rollup()
    archive(tmp_path)
    [first] = tmp_path.iterdir()
    first.rename(tmp_path.parent / "cold-storage.jsonl.gz")
    seed_old_messages(1, days_old=100)
    analytics_rollup()
    archive(tmp_path)
    [second] = tmp_path.iterdir()
    assert second.name.endswith("-2.jsonl.gz")
    second.write_bytes(second.read_bytes()[:10])
    seed_old_messages(1, days_old=100)
    analytics_rollup()
    with pytest.raises(CommandError, match=r"fewer than the \d+ archived into it"):
        call_command("archive_messages", "--older-than", "90d", "--to", str(tmp_path), "--no-progress")


def test_the_periodic_task_honours_the_setting(tmp_path, settings):
    seed_old_messages(10, days_old=40)
    analytics_rollup()
    settings.ARCHIVE_DIR = str(tmp_path)
    settings.ARCHIVE_AFTER_DAYS = 0
    archive_tick()
    assert Message.objects.count() == 10 and not ArchiveCursor.objects.exists()

    settings.ARCHIVE_AFTER_DAYS = 60
    archive_tick()
    assert Message.objects.count() == 10  # younger than 60 days
    assert ArchiveCursor.objects.get().finished_at is not None

    settings.ARCHIVE_AFTER_DAYS = 30
    archive_tick()
    assert Message.objects.count() == 10  # the day's pass is done: the next one tomorrow
    ArchiveCursor.objects.update(finished_at=timezone.now() - timedelta(days=1, seconds=1))
    archive_tick()
    assert Message.objects.count() == 0 and len(archived_ids(tmp_path)) == 10


def test_the_periodic_task_is_listed_only_when_archiving_is_on():
    from messaging_project.settings import base

    listed = [path for path, _every in base.DISPATCHER_PERIODIC_TASKS]
    assert ("deliveries.services.archive.archive_tick" in listed) == bool(base.ARCHIVE_AFTER_DAYS)


def test_sending_a_csv_again_after_its_messages_were_archived_is_refused(tmp_path):
    people = tmp_path / "people.csv"
    people.write_text("to,name\n+14155550101,Ada\n+14155550102,Bob\n")
    call_command("send_bulk", "--csv", str(people), "--channel", "sms", "--body", "Hi {{ name }}", "--no-progress")
    old = timezone.now() - timedelta(days=120)
    Message.objects.update(status=Status.DELIVERED, created_at=old, updated_at=old)
    analytics_rollup()
    assert archive(tmp_path / "archive").messages == 2

    with pytest.raises(CommandError, match="2 message\\(s\\) sent under the key .* were archived"):
        call_command("send_bulk", "--csv", str(people), "--channel", "sms", "--body", "Hi {{ name }}", "--no-progress")
    assert not Message.objects.exists()


def test_a_bad_chunk_size_is_refused_in_one_line():
    with pytest.raises(CommandError, match="--chunk-size 0: give 1 to 100000."):
        call_command("archive_messages", "--older-than", "90d", "--chunk-size", "0", "--no-progress")


def test_a_chunk_left_unfinished_by_a_killed_run_is_skipped_on_restore_and_cut_off_by_the_next_run(tmp_path, capsys):
    seed_old_messages(3)
    analytics_rollup()
    archive(tmp_path)
    [path] = tmp_path.iterdir()
    committed = path.stat().st_size
    with path.open("ab") as handle:  # what a run killed while writing its member leaves
        handle.write(gzip.compress(b'{"model": "deliveries.message", "pk": 1}\n' * 50)[:40])

    call_command("restore_messages", str(path), "--no-progress")
    out = capsys.readouterr().out
    assert "Restored 3 message(s)" in out and "ends in a chunk an interrupted archive run left unfinished" in out

    archive(tmp_path)  # archived again: the next write cuts the unfinished chunk off first
    assert not Message.objects.exists()
    ids = archived_ids(tmp_path)  # reads the whole file: no damaged member left in it
    assert len(ids) == 6 and len(set(ids)) == 3  # archived, restored, archived again
    assert path.stat().st_size > committed


def test_a_file_a_killed_run_created_is_started_again_and_one_it_did_not_is_left_alone(tmp_path):
    ids = seed_old_messages(4)
    analytics_rollup()
    with pytest.raises(RuntimeError), transaction.atomic():  # killed after its fsync, before its commit
        archive(tmp_path)
        raise RuntimeError
    [path] = tmp_path.iterdir()
    assert Message.objects.count() == 4 and not ArchiveFile.objects.exists()

    archive(tmp_path)
    assert list(tmp_path.iterdir()) == [path] and sorted(archived_ids(tmp_path)) == sorted(ids)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path.rename(elsewhere / path.name)  # a file whose rows are not in the table, and of which there is no record
    ArchiveFile.objects.all().delete()
    seed_old_messages(1)
    analytics_rollup()
    (elsewhere / path.name).rename(path)
    archive(tmp_path)
    names = {p.name for p in tmp_path.iterdir() if p.is_file()}
    assert names == {path.name, path.name.replace(".jsonl", "-2.jsonl")}


def test_bodies_holding_unicode_line_separators_are_archived_and_restored_whole(tmp_path):
    ids = seed_old_messages(4)
    # JSON leaves these unescaped, and str.splitlines splits at each of them.
    Message.objects.filter(pk=ids[1]).update(body="one\u2028two\u2029three\u0085four\x1cfive\r\nsix")
    analytics_rollup()
    before = table_dump()
    archive(tmp_path)

    restored = messages_restore(paths=list(tmp_path.iterdir()))

    assert restored.messages == 4
    assert table_dump() == before
