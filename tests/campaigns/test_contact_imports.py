import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Contact, ContactList
from campaigns.services.contact_imports import (
    ContactImportFileError,
    contacts_import,
    contacts_read_csv,
)
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

GOOD = """name,phone,email,language,time_zone,sms_consent,plan
Ada Lovelace,+14155550100,ada@example.com,en,Europe/London,yes,gold
Bob,+1 415 555 0101,,fr,,no,silver
Zoé,,zoe@example.com,fr_CA,America/Montreal,,
"""

# Lines 3, 4, 5, 6, 7, 9, 12 and 13 are wrong, each for its own reason; line 10-11 is one row over two lines.
MIXED = """name,phone,email,time_zone,plan
Ada,+14155550100,ada@example.com,Europe/London,gold
Bad phone,555-12,,UTC,
Bad email,,bob@,UTC,
Bad zone,+14155550102,,Mars/Olympus,
Nobody,,,UTC,silver
Ada again,+14155550100,,UTC,
Eve,+14155550103,eve@example.com,UTC,
Extra,+14155550104,,UTC,gold,surprise
"Multi
line",+14155550105,,UTC,"a, b"
Twice,+14155550106,,Nowhere,
Bad twice,nope,nope,UTC,
"""


def read(text):
    return contacts_read_csv(io.StringIO(text))


def snapshot():
    return [
        (c.pk, c.name, c.phone, c.email, c.language, c.time_zone, c.attributes, c.sms_consent, c.updated_at)
        for c in Contact.objects.order_by("pk")
    ] + sorted(Contact.lists.through.objects.values_list("contact_id", "contactlist_id"))


def test_valid_rows_are_created_with_normalised_fields_and_extra_columns_as_attributes():
    report = contacts_import(source=read(GOOD), list_name="Newsletter")
    assert (report.rows, report.created, report.updated, report.unchanged, report.rejected) == (3, 3, 0, 0, [])
    ada, bob, zoe = Contact.objects.order_by("pk")
    assert (ada.phone, ada.email, ada.time_zone, ada.sms_consent, ada.attributes) == (
        "+14155550100",
        "ada@example.com",
        "Europe/London",
        True,
        {"plan": "gold"},
    )
    assert (bob.phone, bob.email, bob.language, bob.sms_consent) == ("+14155550101", "", "fr", False)
    assert (zoe.language, zoe.attributes) == ("fr-ca", {})
    assert set(ContactList.objects.get(name="Newsletter").contacts.all()) == {ada, bob, zoe}


def test_bad_rows_are_all_reported_with_their_line_number_and_none_is_dropped():
    report = contacts_import(source=read(MIXED))
    assert [row.line for row in report.rejected] == [3, 4, 5, 6, 7, 9, 12, 13]
    reasons = {row.line: row.reason for row in report.rejected}
    assert (
        reasons[3]
        == "phone: '555-12' is not a phone number. Use E.164 format with the country code, like +14155550100."
    )
    assert reasons[4] == "email: 'bob@' is not a valid email address."
    assert reasons[5].startswith("time_zone: 'Mars/Olympus' is not an IANA time zone name")
    assert reasons[6] == "The row has neither a phone number nor an email address."
    assert reasons[7] == "phone: Line 2 already has +14155550100: a contact can appear once."
    assert reasons[9].startswith("The line has 6 values but the header names 5 columns")
    assert reasons[12].startswith("time_zone: 'Nowhere'")
    assert reasons[13].startswith("phone: 'nope' is not a phone number.") and "email: 'nope'" in reasons[13]
    # Every row is accounted for: written, or rejected with a reason.
    assert report.rows == 11
    assert report.created + report.updated + report.unchanged + len(report.rejected) == report.rows
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["Ada", "Eve", "Multi line"]
    assert Contact.objects.get(phone="+14155550105").attributes == {"plan": "a, b"}


def test_importing_the_same_file_twice_changes_nothing():
    first = contacts_import(source=read(GOOD), list_name="Newsletter")
    assert first.created == 3
    before = snapshot()
    second = contacts_import(source=read(GOOD), list_name="Newsletter")
    assert (second.created, second.updated, second.unchanged, second.rejected) == (0, 0, 3, [])
    assert snapshot() == before


def test_importing_a_file_with_bad_rows_twice_changes_nothing_and_reports_the_same_rows():
    first = contacts_import(source=read(MIXED))
    before = snapshot()
    second = contacts_import(source=read(MIXED))
    assert second.rejected == first.rejected
    assert (second.created, second.updated, second.unchanged) == (0, 0, first.created)
    assert snapshot() == before


def test_a_row_updates_the_contact_with_its_phone_or_else_its_email():
    by_phone = ContactFactory(
        name="Old name", phone="+14155550100", email="", attributes={"plan": "free", "city": "Paris"}
    )
    by_email = ContactFactory(name="Zoé", phone="", email="zoe@example.com", time_zone="UTC")
    report = contacts_import(source=read(GOOD))
    assert (report.created, report.updated) == (1, 2)
    by_phone.refresh_from_db()
    by_email.refresh_from_db()
    assert (by_phone.name, by_phone.email) == ("Ada Lovelace", "ada@example.com")
    assert by_phone.attributes == {"plan": "gold", "city": "Paris"}  # merged, not replaced
    assert by_email.time_zone == "America/Montreal"


def test_blank_cells_leave_existing_values_alone():
    contact = ContactFactory(phone="+14155550101", email="bob@example.com", time_zone="Asia/Tokyo", sms_consent=True)
    contacts_import(source=read("phone,email,time_zone,sms_consent\n+14155550101,,,\n"))
    contact.refresh_from_db()
    assert (contact.email, contact.time_zone, contact.sms_consent) == ("bob@example.com", "Asia/Tokyo", True)


def test_a_row_whose_phone_and_email_belong_to_two_contacts_is_rejected():
    ada = ContactFactory(phone="+14155550100", email="")
    ContactFactory(phone="", email="ada@example.com")
    report = contacts_import(source=read("phone,email\n+14155550100,ada@example.com\n"))
    [rejected] = report.rejected
    assert rejected.line == 2
    assert f"contact #{ada.pk}" in rejected.reason and "merge" in rejected.reason


def test_joining_a_list_counts_as_an_update():
    contacts_import(source=read(GOOD))
    report = contacts_import(source=read(GOOD), list_name="VIP")
    assert (report.created, report.updated, report.unchanged) == (0, 3, 0)
    assert ContactList.objects.get(name="VIP").contacts.count() == 3


def test_a_dry_run_checks_and_counts_but_saves_nothing():
    report = contacts_import(source=read(MIXED), list_name="Newsletter", dry_run=True)
    assert report.created == 3
    assert len(report.rejected) == 8
    assert "would be created" in report.summary()
    assert not Contact.objects.exists()
    assert not ContactList.objects.exists()


def test_the_progress_callback_is_called_once_per_row():
    calls = []
    contacts_import(source=read(MIXED), on_row=lambda: calls.append(1))
    assert len(calls) == 11


def test_blank_lines_are_counted_not_imported():
    source = read("phone\n+14155550100\n\n,\n+14155550101\n")
    assert (len(source), source.blank_lines, source.line_numbers) == (2, 2, [2, 5])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty"),
        ("name,plan\nAda,gold\n", "needs a 'phone' or an 'email' column"),
        ("phone,Phone Number\n+14155550100,+14155550101\n", "appear more than once: phone"),
        ("phone,2fa,language\n", "Column '2fa': '2fa' cannot be an attribute name"),
    ],
)
def test_a_file_that_cannot_be_imported_at_all_is_refused_before_any_row(text, message):
    with pytest.raises(ContactImportFileError) as excinfo:
        read(text)
    assert message in str(excinfo.value)


def test_headers_are_matched_loosely():
    source = read("Full Name,Phone Number,E-mail,Time Zone,Plan Level\nAda,+14155550100,ada@example.com,UTC,gold\n")
    assert source.dataset.headers == ["name", "phone", "email", "time_zone", "plan_level"]


# --- The command ----------------------------------------------------------------------------------------------


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_contacts", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def test_the_command_imports_a_file_into_a_list_and_a_second_run_changes_nothing(tmp_path: Path):
    path = tmp_path / "contacts.csv"
    path.write_text(GOOD, encoding="utf-8")
    out, error = run(str(path), "--list", "Newsletter")
    assert error is None
    assert out.strip() == (
        f"Imported {path} into list 'Newsletter': 3 row(s): 3 contact(s) were created, 0 updated, 0 unchanged, "
        "0 rejected."
    )
    before = snapshot()
    out, error = run(str(path), "--list", "Newsletter")
    assert "0 contact(s) were created, 0 updated, 3 unchanged, 0 rejected." in out
    assert snapshot() == before


def test_the_command_prints_every_rejected_row_with_its_line_and_fails(tmp_path: Path):
    path = tmp_path / "contacts.csv"
    path.write_bytes(("\ufeff" + MIXED).encode("utf-8"))  # a BOM, as spreadsheets write it
    out, error = run(str(path), "--no-progress")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"Line {n}" for n in (3, 4, 5, 6, 7, 9, 12, 13)]
    assert lines[2] == "Line 5: time_zone: 'Mars/Olympus' is not an IANA time zone name (like 'Europe/Paris' or 'UTC')."
    assert lines[-1].endswith("3 contact(s) were created, 0 updated, 0 unchanged, 8 rejected.")
    assert error == "8 row(s) rejected; fix them and run the import again."


def test_the_command_refuses_a_file_it_cannot_import(tmp_path: Path):
    path = tmp_path / "contacts.csv"
    path.write_text("name,plan\nAda,gold\n", encoding="utf-8")
    assert "needs a 'phone' or an 'email' column" in run(str(path))[1]
    assert "Cannot read" in run(str(tmp_path / "missing.csv"))[1]


def test_the_command_dry_run_saves_nothing(tmp_path: Path):
    path = tmp_path / "contacts.csv"
    path.write_text(GOOD, encoding="utf-8")
    out, error = run(str(path), "--dry-run", "--list", "Newsletter")
    assert error is None
    assert out.startswith("Dry run, nothing saved.")
    assert not Contact.objects.exists()


def test_the_example_file_in_the_docs_imports_as_the_docs_say():
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "contacts.csv"
    out, error = run(str(example), "--list", "Newsletter")
    assert out.splitlines()[0].startswith("Line 5: phone: '555-12' is not a phone number.")
    assert "3 contact(s) were created, 0 updated, 0 unchanged, 1 rejected." in out
    assert error == "1 row(s) rejected; fix them and run the import again."


# --- Phone numbers written with the international prefix 00 -----------------------------------------------------


def test_a_number_written_with_the_international_prefix_00_is_stored_as_with_plus():
    report = contacts_import(source=read("name,phone\nAda,0044 20 7946 0958\nBob,00 1 415 555 0101\n"))
    assert report.rejected == []
    assert sorted(Contact.objects.values_list("phone", flat=True)) == ["+14155550101", "+442079460958"]


def test_a_00_number_and_the_same_number_with_plus_are_one_contact():
    contacts_import(source=read("name,phone\nAda,+44 20 7946 0958\n"))
    report = contacts_import(source=read("name,phone,plan\nAda,0044 20 7946 0958,gold\n"))
    assert (report.created, report.updated) == (0, 1)
    assert Contact.objects.get().attributes == {"plan": "gold"}


def test_a_00_number_that_is_no_number_after_the_prefix_is_rejected_with_the_numbers_own_reason():
    report = contacts_import(source=read("name,phone\nAda,0012\n"))
    [rejected] = report.rejected
    assert rejected.line == 2
    assert "'0012' is not a phone number" in rejected.reason


def test_a_regions_own_international_prefix_keeps_its_meaning(settings):
    settings.PHONE_DEFAULT_REGION = "AU"  # dials abroad with 0011: "0011 44..." is a UK number, not +1144...
    contacts_import(source=read("name,phone\nAda,0011 44 20 7946 0958\n"))
    assert Contact.objects.get().phone == "+442079460958"
