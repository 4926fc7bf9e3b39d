"""manage.py send_bulk: one message per CSV row, rejected rows by line, at most once per row under a key."""

import gc
import io
import tracemalloc
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from campaigns.services import bulk_sends
from deliveries.models import Batch, Message, Status
from tests.factories import MessageFactory, TemplateFactory
from tests.support import other_connections, run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def write_csv(tmp_path, text, name="people.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def send_bulk(*args, **options):
    out = io.StringIO()
    try:
        call_command("send_bulk", *args, stdout=out, no_progress=True, **options)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


PEOPLE = """to,name,code
+14155550101,Ada,A1
+14155550102,Grace,B2
555-12,Bad,C3
+14155550104,,D4
+14155550105,Alan,E5
"""


def test_each_valid_row_is_sent_and_each_rejected_row_is_reported_with_its_line(tmp_path, sms_outbox):
    TemplateFactory(slug="promo", body="Hi {{ name }}, code {{ code }}", variables={"name": None, "code": None})
    out, error = send_bulk(csv=str(write_csv(tmp_path, PEOPLE)), template="promo")
    assert "Line 4: to: '555-12' is not a phone number." in out
    assert "Line 5: template: Missing variable(s) in body: 'name' (line 1)." in out
    assert "5 row(s): 3 were accepted (3 queued, 0 scheduled), 0 already sent by an earlier run with this key, " in out
    assert "2 rejected, 0 suppressed." in out
    assert error == "2 row(s) rejected. The other rows were stored; put the corrected rows in a new file to send them."
    run_burst_worker()
    assert sorted(m.body for m in sms_outbox) == ["Hi Ada, code A1", "Hi Alan, code E5", "Hi Grace, code B2"]
    batch = Batch.objects.get()
    assert (batch.kind, batch.accepted, batch.rejected) == ("csv", 3, 2)
    assert batch.key.startswith("sha256:")
    assert sorted(Message.objects.values_list("dedupe_key", flat=True)) == [f"{batch.key}:{line}" for line in (2, 3, 6)]


def test_running_the_same_file_again_sends_nobody_twice_and_a_new_key_sends_again(tmp_path, sms_outbox):
    path = write_csv(tmp_path, "to,name\n+14155550101,Ada\n+14155550102,Grace\n")
    options = {"csv": str(path), "channel": "sms", "body": "Hello {{ name }}"}
    assert send_bulk(**options)[1] is None
    out, error = send_bulk(**options)
    assert error is None
    assert "2 row(s): 0 were accepted (0 queued, 0 scheduled), 2 already sent by an earlier run with this key" in out
    send_bulk(**options, key="again-on-purpose")
    run_burst_worker()
    assert sorted(m.body for m in sms_outbox) == ["Hello Ada", "Hello Ada", "Hello Grace", "Hello Grace"]


def test_a_first_run_whose_dedupe_key_a_message_already_has_skips_that_row_and_stores_the_rest(tmp_path, sms_outbox):
    # A key's first run does not look its rows' dedupe keys up: a message stored under one of them some other
    # way (here by hand) makes the chunk's insert fail on the unique index, and the chunk is stored again, checked.
    MessageFactory(dedupe_key="fresh:3", status=Status.SENT)
    path = write_csv(tmp_path, "to,name\n+14155550101,Ada\n+14155550102,Grace\n+14155550103,Alan\n")
    out, error = send_bulk(csv=str(path), channel="sms", body="Hello {{ name }}", key="fresh")
    assert error is None
    assert "3 row(s): 2 were accepted (2 queued, 0 scheduled), 1 already sent by an earlier run with this key" in out
    assert Message.objects.filter(dedupe_key__startswith="fresh:").count() == 3
    run_burst_worker()
    assert sorted(m.body for m in sms_outbox) == ["Hello Ada", "Hello Alan"]


def test_a_run_interrupted_mid_file_then_run_again_sends_each_row_exactly_once(tmp_path, monkeypatch, sms_outbox):
    rows = "".join(f"+1415{7000000 + i},P{i}\n" for i in range(50))
    path = write_csv(tmp_path, "to,name\n" + rows)
    real = bulk_sends._validate_row
    rows_read = []

    def interrupted(*args, **kwargs):  # Ctrl-C while the 26th row is read
        rows_read.append(1)
        if len(rows_read) == 26:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_sends, "_validate_row", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bulk_sends.bulk_send_csv(path=path, channel="sms", body="Hi {{ name }}", chunk_size=10)
    assert Message.objects.count() == 20  # two whole chunks were stored before the interruption
    monkeypatch.setattr(bulk_sends, "_validate_row", real)

    report = bulk_sends.bulk_send_csv(path=path, channel="sms", body="Hi {{ name }}", chunk_size=10)
    assert (report.accepted, report.already_sent) == (30, 20)
    run_burst_worker()
    assert sorted(m.recipient for m in sms_outbox) == sorted(f"+1415{7000000 + i}" for i in range(50))


def test_a_changed_file_under_a_used_key_is_refused(tmp_path):
    send_bulk(csv=str(write_csv(tmp_path, "to\n+14155550101\n")), channel="sms", body="Hi", key="october")
    _, error = send_bulk(csv=str(write_csv(tmp_path, "to\n+14155550109\n")), channel="sms", body="Hi", key="october")
    assert "The key 'october' was used for a different file" in error
    assert Message.objects.count() == 1


def test_dry_run_checks_and_counts_but_stores_nothing(tmp_path):
    out, error = send_bulk(csv=str(write_csv(tmp_path, PEOPLE)), channel="sms", body="Hi {{ name }}", dry_run=True)
    assert "Dry run, nothing stored." in out
    assert "5 row(s): 3 would be accepted" in out
    assert "Line 5: body: Missing variable(s) in body: 'name' (line 1)." in out
    assert not Message.objects.exists() and not Batch.objects.exists()
    assert error.startswith("2 row(s) rejected. The other rows were checked")


def test_at_schedules_every_row_and_email_takes_a_subject(tmp_path):
    path = write_csv(tmp_path, "to,name\nada@example.com,Ada\n")
    at = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    out, error = send_bulk(
        csv=str(path), channel="email", subject="For {{ name }}", body="Hello {{ name }}", at=at.isoformat()
    )
    assert error is None, out
    message = Message.objects.get()
    assert (message.status, message.subject, message.body) == (Status.SCHEDULED, "For Ada", "Hello Ada")
    assert message.send_at == at


def test_at_more_than_a_year_ahead_or_in_the_past_rejects_each_row_with_the_reason(tmp_path):
    path = write_csv(tmp_path, "to,name\nada@example.com,Ada\n")
    out, error = send_bulk(csv=str(path), channel="email", subject="Hi", body="Hi", at="2001-01-01T09:00:00Z")
    assert "Line 2: send_at: 2001-01-01T09:00:00+00:00 is more than 5 minutes in the past" in out
    assert error.startswith("1 row(s) rejected.")
    assert not Message.objects.exists()


def test_a_row_whose_sms_renders_over_1600_characters_is_rejected_with_the_count(tmp_path):
    path = write_csv(tmp_path, f"to,text\n+14155550101,{'x' * 1700}\n+14155550102,short\n")
    out, error = send_bulk(csv=str(path), channel="sms", body="{{ text }}")
    assert "Line 2: body: The body is 1,700 characters (12 segments); an SMS takes at most 1,600 characters." in out
    assert Message.objects.get().recipient == "+14155550102"


@pytest.mark.parametrize(
    ("csv_text", "options", "expected"),
    [
        ("name\nAda\n", {"channel": "sms", "body": "Hi"}, "one of them 'to'"),
        ("to\n+14155550101\n", {"channel": "sms", "body": "Hi {{ nom }}"}, "'nom' is not a column of the file"),
        ("to\n+14155550101\n", {"template": "nope"}, "No template with slug 'nope'."),
        ("to\n+14155550101\n", {"template": "x", "body": "Hi"}, "Give either --template SLUG"),
    ],
)
def test_files_and_options_that_cannot_be_sent_are_refused_whole(tmp_path, csv_text, options, expected):
    _, error = send_bulk(csv=str(write_csv(tmp_path, csv_text)), **options)
    assert expected in error
    assert not Message.objects.exists()


def peak_memory_sending(tmp_path, rows: int) -> int:
    path = write_csv(tmp_path, "to,name\n" + "".join(f"+1415{7000000 + i},P{i}\n" for i in range(rows)), f"{rows}.csv")
    gc.collect()
    tracemalloc.start()
    try:
        report = bulk_sends.bulk_send_csv(path=path, channel="sms", body="Hi {{ name }}", chunk_size=250)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.accepted == rows
    return peak


@pytest.mark.db_neutral
def test_memory_stays_bounded_by_the_chunk_size_not_the_number_of_rows(tmp_path):
    peak_memory_sending(tmp_path, 250)  # warm up: first-time imports and caches are not what is measured
    small = peak_memory_sending(tmp_path, 1_000)
    large = peak_memory_sending(tmp_path, 5_000)
    # Holding the 4,000 extra rows would cost about 10 MB; the peak moves by garbage-collection noise only.
    assert large - small < 2_000_000, (small, large)


def test_the_summary_counts_rows_to_suppressed_addresses_and_those_are_never_sent(tmp_path, sms_outbox):
    from deliveries.models import Suppression
    from deliveries.services.suppression import suppression_add

    suppression_add(
        channel="sms", address="+14155550102", reason=Suppression.Reason.OPT_OUT, source="Twilio inbound reply: STOP"
    )
    out, _error = send_bulk(csv=str(write_csv(tmp_path, PEOPLE)), channel="sms", body="Hello", dry_run=True)
    assert "1 rejected, 1 suppressed." in out  # a dry run says so too
    out, _error = send_bulk(csv=str(write_csv(tmp_path, PEOPLE)), channel="sms", body="Hello")
    assert "4 were accepted" in out
    assert "1 rejected, 1 suppressed." in out
    run_burst_worker()
    assert sorted(m.recipient for m in sms_outbox) == ["+14155550101", "+14155550104", "+14155550105"]
    assert Message.objects.get(recipient="+14155550102").status == Status.SUPPRESSED


def mixed_file(tmp_path, rows: int):
    """`rows` numbered people; every 7th has a number that is not one, every 11th line is blank."""
    lines = []
    for i in range(rows):
        if i % 11 == 10:
            lines.append(",")
        lines.append(f"555-{i},P{i}" if i % 7 == 6 else f"+1415{7000000 + i},P{i}")
    return write_csv(tmp_path, "to,name\n" + "\n".join(lines) + "\n", f"mixed-{rows}.csv")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="processes store rows on PostgreSQL")
def test_several_processes_report_and_store_exactly_what_one_does(tmp_path):
    from deliveries.models import Suppression
    from deliveries.services.suppression import suppression_add

    path = mixed_file(tmp_path, 95)
    for person in (3, 50):  # in different chunks, so different processes count them
        suppression_add(channel="sms", address=f"+1415{7000000 + person}", reason=Suppression.Reason.OPT_OUT, source="")
    one = bulk_sends.bulk_send_csv(path=path, channel="sms", body="Hi {{ name }}", key="one", chunk_size=10)
    before = other_connections()
    progress = []
    three = bulk_sends.bulk_send_csv(
        path=path, channel="sms", body="Hi {{ name }}", key="three", chunk_size=10, processes=3, on_rows=progress.append
    )
    assert three.summary() == one.summary()
    assert three.rejected == one.rejected  # in line order, whichever process found them
    assert (three.rows, three.accepted, len(three.rejected), three.blank_lines, three.suppressed) == (95, 82, 13, 8, 2)
    assert sum(progress) == 103  # every line after the header, blank ones too
    stored = {key: set() for key in ("one", "three")}
    for dedupe_key, body in Message.objects.values_list("dedupe_key", "body"):
        key, _, line = dedupe_key.partition(":")
        stored[key].add((int(line), body))
    assert stored["three"] == stored["one"] and len(stored["one"]) == 82
    assert Batch.objects.get(key="three").accepted == 82
    wait_for(lambda: other_connections() <= before, timeout=5, message="the processes' connections to close")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="processes store rows on PostgreSQL")
def test_a_process_failing_stops_the_run_with_what_to_do_and_running_again_sends_each_row_once(
    tmp_path, monkeypatch, sms_outbox
):
    path = mixed_file(tmp_path, 60)
    real = bulk_sends.messages_create_many

    def failing_on_the_third_chunk(**kwargs):  # in the forked processes too
        if any(request.dedupe_key == "run:32" for request, _ in kwargs["items"]):
            raise RuntimeError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(bulk_sends, "messages_create_many", failing_on_the_third_chunk)
    with pytest.raises(bulk_sends.BulkSendError) as raised:
        bulk_sends.bulk_send_csv(path=path, channel="sms", body="Hi {{ name }}", key="run", chunk_size=10, processes=2)
    assert "RuntimeError: the database went away" in str(raised.value)
    assert "run the same command again to send the rest" in str(raised.value)
    monkeypatch.setattr(bulk_sends, "messages_create_many", real)

    again = bulk_sends.bulk_send_csv(path=path, channel="sms", body="Hi {{ name }}", key="run", processes=2)
    assert again.accepted + again.already_sent == 52
    run_burst_worker()
    assert len(sms_outbox) == len({m.recipient for m in sms_outbox}) == 52


def test_a_row_to_a_country_not_allowed_is_rejected_by_its_line_and_the_others_are_stored(tmp_path, settings):
    settings.SMS_ALLOWED_COUNTRIES = ["US"]
    rows = "to\n+14155550101\n+5511987654321\n+14155550103\n"
    out, error = send_bulk(csv=str(write_csv(tmp_path, rows)), channel="sms", body="Hi")
    assert "Line 3: to: Sending sms to BR is not allowed (SMS_ALLOWED_COUNTRIES: US)." in out
    assert "3 row(s): 2 were accepted" in out
    assert error is not None and error.startswith("1 row(s) rejected.")
    assert sorted(Message.objects.values_list("recipient", flat=True)) == ["+14155550101", "+14155550103"]
