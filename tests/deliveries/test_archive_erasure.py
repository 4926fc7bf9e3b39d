"""An erasure reaches the archive: the dispatchers rewrite the files on their disk without the erased person, a
restore of a copy made before the erasure brings them back blank, a rewrite killed halfway is settled by whoever
opens the file next, and someone who gave the same number again after the erasure is archived as anyone."""

import gzip
import io
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from analytics.services.rollup import analytics_rollup
from campaigns.services.person_erasure import person_erase
from deliveries.archiving.day_files import rewrite_path
from deliveries.archiving.lock import latest_archive_erasure
from deliveries.models import ERASED, ArchiveErasure, ArchiveFile, Message, MessageEvent
from deliveries.services.archive import messages_archive
from deliveries.services.archive_erasure import archive_erasure_tick
from deliveries.services.restore import messages_restore
from tests.deliveries.archive_support import seed_old_messages
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

PERSON = "+14155550142"
SECRET = "code 4321 for Ada"


def archive(directory: Path):
    analytics_rollup()  # archiving keeps back what the rollup has not counted yet
    return messages_archive(older_than=timedelta(days=90), directory=directory)


def seed_with_person(count: int = 30, person_messages: int = 3) -> tuple[list[int], list[int]]:
    """Old messages, the first few of them to the person, with texts and a timeline that quote them."""
    ids = seed_old_messages(count)
    theirs = ids[:person_messages]
    Message.objects.filter(pk__in=theirs).update(
        recipient=PERSON, body=f"Hi Ada, your {SECRET}", context={"name": "Ada"}, last_error_message=f"To {PERSON}"
    )
    MessageEvent.objects.filter(message_id__in=theirs).update(
        detail=f"Twilio said: sent to {PERSON}", data={"To": PERSON.removeprefix("+"), "status": "sent"}
    )
    return ids, theirs


def lines_of(directory: Path) -> dict[tuple[str, int], dict]:
    """Every archived row, by (model, id)."""
    rows = {}
    for path in sorted(directory.glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            for line in handle:
                row = json.loads(line)
                rows[(row["model"], row["pk"])] = row
    return rows


def assert_files_match_their_records(directory: Path) -> None:
    for record in ArchiveFile.objects.all():
        assert Path(record.path).stat().st_size == record.size
    assert not list(directory.glob("*.rewrite"))


def test_the_dispatchers_rewrite_the_files_without_the_person_and_nothing_else_changes(tmp_path):
    ids, theirs = seed_with_person()
    archive(tmp_path)
    before = lines_of(tmp_path)
    assert any(PERSON in json.dumps(row) for row in before.values())

    erasure = person_erase(phone=PERSON)
    assert erasure.counts.archive_files == ArchiveFile.objects.count() > 0
    archive_erasure_tick()

    after = lines_of(tmp_path)
    assert after.keys() == before.keys()
    text = json.dumps(list(after.values()))
    for quote in (PERSON, PERSON.removeprefix("+"), SECRET, "Ada"):
        assert quote not in text
    for pk in theirs:
        fields = after[("deliveries.message", pk)]["fields"]
        assert (fields["recipient"], fields["body"], fields["context"], fields["last_error_message"]) == (
            ERASED,
            "",
            {},
            "",
        )
        # What the figures count by stays.
        kept = ("channel", "status", "created_at", "last_error_code", "sent_at")
        assert {k: fields[k] for k in kept} == {k: before[("deliveries.message", pk)]["fields"][k] for k in kept}
    events = [row for row in after.values() if row["model"] == "deliveries.messageevent"]
    theirs_events = [row for row in events if row["fields"]["message"] in theirs]
    assert theirs_events and all(row["fields"]["detail"] == "" for row in theirs_events)
    assert all(row["fields"]["data"] == {"status": "sent"} for row in theirs_events)
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("deliveries.message", pk) for pk in theirs} | {
        ("deliveries.messageevent", row["pk"]) for row in theirs_events
    }
    assert_files_match_their_records(tmp_path)
    assert set(ArchiveFile.objects.values_list("erasures_applied", flat=True)) == {latest_archive_erasure()}

    # Restored, the person's messages come back blank and everyone else's as archived.
    restored = messages_restore(paths=sorted(tmp_path.glob("*.jsonl.gz")))
    assert restored.messages == len(ids) and restored.erased == 0  # the rewritten file holds nothing to blank
    assert set(Message.objects.filter(pk__in=theirs).values_list("recipient", "body")) == {(ERASED, "")}
    assert Message.objects.exclude(pk__in=theirs).filter(recipient=ERASED).count() == 0


def test_a_file_searched_once_is_not_read_again_and_one_without_the_person_is_not_rewritten(tmp_path):
    seed_with_person(person_messages=0)
    archive(tmp_path)
    [path] = tmp_path.glob("*.jsonl.gz")
    written = path.read_bytes()

    person_erase(phone=PERSON)
    archive_erasure_tick()

    assert path.read_bytes() == written
    record = ArchiveFile.objects.get()
    assert record.erasures_applied == latest_archive_erasure()
    path.write_bytes(b"not an archive any more")  # were it read again, it would be found damaged
    archive_erasure_tick()
    assert ArchiveFile.objects.get().erasures_applied == record.erasures_applied


def test_a_restore_of_a_copy_made_before_the_erasure_brings_the_person_back_blank(tmp_path, capsys):
    ids, theirs = seed_with_person()
    archive(tmp_path / "archive")
    copy = tmp_path / "cold-storage"
    shutil.copytree(tmp_path / "archive", copy)

    person_erase(phone=PERSON)
    call_command("restore_messages", *sorted(str(path) for path in copy.glob("*.jsonl.gz")), no_progress=True)

    assert "3 of them restored blank: their recipients' data was erased after these files were written" in (
        capsys.readouterr().out
    )
    rows = Message.objects.filter(pk__in=theirs)
    assert set(rows.values_list("recipient", "body", "last_error_message")) == {(ERASED, "", "")}
    assert set(MessageEvent.objects.filter(message_id__in=theirs).values_list("detail", flat=True)) == {""}
    assert Message.objects.filter(pk__in=ids).exclude(pk__in=theirs).filter(recipient=ERASED).count() == 0


def test_someone_who_gave_the_number_again_after_the_erasure_is_archived_and_restored_as_anyone(tmp_path):
    seed_with_person()
    person_erase(phone=PERSON)
    # They come back: new messages to the same number, archived later (made here as if from before, then the
    # erasure moved further back in time than them).
    again, _ = seed_with_person(person_messages=0, count=3)
    Message.objects.filter(pk__in=again).update(recipient=PERSON, body="Welcome back")
    earliest = Message.objects.filter(pk__in=again).order_by("created_at").first().created_at
    ArchiveErasure.objects.update(requested_at=earliest - timedelta(seconds=1))
    ArchiveFile.objects.all().delete()
    archive(tmp_path)
    ArchiveFile.objects.update(erasures_applied=0)  # as if written before the erasure: searched again

    archive_erasure_tick()

    rows = lines_of(tmp_path)
    assert {rows[("deliveries.message", pk)]["fields"]["body"] for pk in again} == {"Welcome back"}
    restored = messages_restore(paths=sorted(tmp_path.glob("*.jsonl.gz")))
    assert restored.erased == 0
    assert set(Message.objects.filter(pk__in=again).values_list("recipient", flat=True)) == {PERSON}


def test_a_file_written_after_an_erasure_is_not_searched_for_it(tmp_path):
    person_erase(phone=PERSON)
    seed_old_messages(5)
    archive(tmp_path)
    assert ArchiveFile.objects.get().erasures_applied == latest_archive_erasure() > 0


def rewrite_killed_after_its_commit(directory: Path) -> tuple[Path, list[int]]:
    """An archived file holding the person, and the state a dispatcher killed between committing its rewrite's size
    and putting the rewrite in place leaves: the new size recorded, the rewrite beside the file, the file as it was,
    and the file not marked searched. Returns the file and the person's message ids."""
    _ids, theirs = seed_with_person(count=20)
    archive(directory)
    [path] = directory.glob("*.jsonl.gz")
    original = path.read_bytes()
    person_erase(phone=PERSON)
    archive_erasure_tick()
    path.rename(rewrite_path(path))
    path.write_bytes(original)
    ArchiveFile.objects.update(erasures_applied=0)
    return path, theirs


def test_a_rewrite_killed_after_its_commit_is_put_in_place_before_the_file_is_appended_to(tmp_path):
    path, theirs = rewrite_killed_after_its_commit(tmp_path)
    MessageFactory()  # a recent message, so that SQLite's seeded ids go on after the archived ones
    later = seed_old_messages(4)  # the same day: appended to the same file

    archive(tmp_path)

    assert_files_match_their_records(tmp_path)
    rows = lines_of(tmp_path)
    assert {rows[("deliveries.message", pk)]["fields"]["recipient"] for pk in theirs} == {ERASED}
    assert all(("deliveries.message", pk) in rows for pk in later)
    restored = messages_restore(paths=[path])
    assert restored.messages == 24 and restored.erased == 0


def test_a_rewrite_killed_before_its_commit_is_dropped(tmp_path):
    seed_with_person(count=10)
    archive(tmp_path)
    [path] = tmp_path.glob("*.jsonl.gz")
    original = path.read_bytes()
    rewrite_path(path).write_bytes(b"half a rewrite")  # its size is not the committed one: never committed

    restored = messages_restore(paths=[path])

    assert not rewrite_path(path).exists() and path.read_bytes() == original
    assert restored.messages == 10


def test_a_rewrite_killed_before_the_file_was_marked_searched_is_settled_by_the_next_tick(tmp_path):
    _path, theirs = rewrite_killed_after_its_commit(tmp_path)

    archive_erasure_tick()

    assert_files_match_their_records(tmp_path)
    assert ArchiveFile.objects.get().erasures_applied == latest_archive_erasure()
    rows = lines_of(tmp_path)
    assert {rows[("deliveries.message", pk)]["fields"]["recipient"] for pk in theirs} == {ERASED}


def test_a_message_the_erasure_left_being_sent_is_blanked_when_it_is_archived_later(tmp_path):
    ids = seed_old_messages(3)
    Message.objects.filter(pk=ids[0]).update(recipient=PERSON, body=SECRET, status="sending")
    erasure = person_erase(phone=PERSON)
    assert erasure.counts.messages_in_flight == 1
    # The provider answered; nobody ran the erasure again.
    Message.objects.filter(pk=ids[0]).update(status="delivered")

    archive(tmp_path)

    rows = lines_of(tmp_path)
    assert rows[("deliveries.message", ids[0])]["fields"]["recipient"] == ERASED
    assert SECRET not in json.dumps(list(rows.values()))
    assert rows[("deliveries.message", ids[1])]["fields"]["recipient"] != ERASED


def test_an_email_address_in_another_case_and_a_whatsapp_number_are_found_in_the_files(tmp_path):
    ids = seed_old_messages(4)
    Message.objects.filter(pk=ids[0]).update(channel="email", recipient="Ada.Lovelace@Example.ORG", body=SECRET)
    Message.objects.filter(pk=ids[1]).update(channel="whatsapp", recipient=PERSON, body=SECRET)
    archive(tmp_path)

    person_erase(email="ada.lovelace@example.org")
    person_erase(phone=PERSON)
    archive_erasure_tick()

    rows = lines_of(tmp_path)
    assert [rows[("deliveries.message", pk)]["fields"]["recipient"] for pk in ids[:2]] == [ERASED, ERASED]
    assert SECRET not in json.dumps(list(rows.values()))


def test_a_file_on_another_disk_waits_and_a_damaged_one_is_logged_with_its_path(tmp_path, caplog):
    seed_with_person(count=10)
    archive(tmp_path)
    [path] = tmp_path.glob("*.jsonl.gz")
    elsewhere = ArchiveFile.objects.create(
        path=str(tmp_path / "gone" / "messages-2020-01-01.jsonl.gz"), day="2020-01-01"
    )
    person_erase(phone=PERSON)
    written = bytearray(path.read_bytes())
    written[len(written) // 2] ^= 0xFF  # damaged, its size unchanged

    path.write_bytes(bytes(written))
    archive_erasure_tick()
    assert f"Cannot erase in the archive file {path}: {path} is damaged" in caplog.text

    path.write_bytes(bytes(written[:50]))  # and shorter than what was archived into it
    archive_erasure_tick()
    assert "it holds fewer bytes than the" in caplog.text
    assert set(ArchiveFile.objects.values_list("erasures_applied", flat=True)) == {0}
    assert ArchiveFile.objects.get(pk=elsewhere.pk).erasures_applied == 0


def test_a_dry_run_records_nothing_for_the_archive(tmp_path):
    seed_with_person(count=5)
    archive(tmp_path)
    erasure = person_erase(phone=PERSON, dry_run=True)
    assert erasure.counts.archive_files == 1
    assert not ArchiveErasure.objects.exists()
    assert "[erased]" not in json.dumps(list(lines_of(tmp_path).values()))


@pytest.mark.django_db(transaction=True)  # the dispatcher's pass manages its own connection
def test_the_dispatchers_pass_does_it_whether_or_not_they_archive(tmp_path, settings):
    assert not settings.ARCHIVE_AFTER_DAYS
    _ids, theirs = seed_with_person(count=5)
    archive(tmp_path)
    person_erase(phone=PERSON)

    call_command("run_dispatcher", "--once", stdout=io.StringIO())

    rows = lines_of(tmp_path)
    assert {rows[("deliveries.message", pk)]["fields"]["recipient"] for pk in theirs} == {ERASED}


def test_the_archive_files_page_shows_superusers_what_each_file_holds_and_whether_it_was_searched(tmp_path, client):
    seed_with_person(count=6)
    archive(tmp_path)
    [path] = tmp_path.glob("*.jsonl.gz")
    person_erase(phone=PERSON)
    client.force_login(User.objects.create_superuser("root", password="pw"))

    page = client.get("/admin/deliveries/archivefile/").content.decode()
    assert str(path) in page and "Waiting for its dispatcher" in page

    archive_erasure_tick()
    page = client.get("/admin/deliveries/archivefile/").content.decode()
    assert "Waiting" not in page and '<td class="field-erasures_shown">Yes</td>' in page


def test_staff_who_are_not_superusers_cannot_see_the_archive_files(tmp_path, client):
    archive(tmp_path)
    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename="view_archivefile"))
    client.force_login(staff)
    assert client.get("/admin/deliveries/archivefile/").status_code == 403


def test_what_a_rewriter_killed_mid_write_left_never_takes_the_files_place(tmp_path):
    _ids, theirs = seed_with_person(count=10)
    archive(tmp_path)
    [path] = tmp_path.glob("*.jsonl.gz")
    record = ArchiveFile.objects.get()
    # A half-written rewrite, even one of exactly the committed size, is under a name no settle reads.
    path.with_name(path.name + ".rewrite-partial").write_bytes(b"x" * record.size)
    person_erase(phone=PERSON)

    archive_erasure_tick()

    assert_files_match_their_records(tmp_path)
    assert not list(tmp_path.glob("*.rewrite-partial"))
    rows = lines_of(tmp_path)
    assert {rows[("deliveries.message", pk)]["fields"]["recipient"] for pk in theirs} == {ERASED}
