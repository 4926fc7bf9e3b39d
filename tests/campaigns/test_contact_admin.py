import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.models import Contact, ContactList
from campaigns.services.segments import segment_create
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

IMPORT = "/admin/campaigns/contact/import/"
CONFIRM = "/admin/campaigns/contact/process_import/"


@pytest.fixture
def operator(client):
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    codenames = [f"{action}_{model}" for action in ("add", "change", "view") for model in ("contact", "segment")]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def upload(client, text, list_name=""):
    csv_file = SimpleUploadedFile("contacts.csv", text.encode("utf-8"), content_type="text/csv")
    return client.post(IMPORT, {"import_file": csv_file, "format": "0", "list_name": list_name})


def test_the_admin_import_shows_a_dry_run_then_imports_into_the_list_on_confirm(client, operator):
    response = upload(client, "name,phone,plan\nAda,+14155550100,gold\nBob,+14155550101,\n", list_name="Newsletter")
    assert response.status_code == 200
    assert not Contact.objects.exists()  # the first step is a dry run
    confirm = response.context["confirm_form"]
    assert confirm.initial["list_name"] == "Newsletter"
    response = client.post(CONFIRM, {**confirm.initial, "resource": ""})
    assert response.status_code == 302
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["Ada", "Bob"]
    assert ContactList.objects.get(name="Newsletter").contacts.count() == 2
    assert Contact.objects.get(name="Ada").attributes == {"plan": "gold"}


def test_the_admin_import_lists_every_rejected_row_by_its_line_and_imports_nothing(client, operator):
    response = upload(client, "name,phone,time_zone\nAda,+14155550100,UTC\nBob,555,UTC\nEve,+14155550102,Nowhere\n")
    assert response.status_code == 200
    assert "confirm_form" not in response.context
    result = response.context["result"]
    assert [(row.number, sorted(row.error_dict)) for row in result.invalid_rows] == [(3, ["phone"]), (4, ["time_zone"])]
    page = response.content.decode()
    assert "Some rows failed to validate" in page
    assert "&#x27;555&#x27; is not a phone number" in page
    assert not Contact.objects.exists()


def test_the_admin_import_refuses_a_file_without_phone_or_email(client, operator):
    response = upload(client, "name,plan\nAda,gold\n")
    assert "needs a &#x27;phone&#x27; or an &#x27;email&#x27; column" in response.content.decode()
    assert not Contact.objects.exists()


def test_importing_in_the_admin_needs_the_permission_to_add_contacts(client):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_contact"))
    client.force_login(user)
    assert client.get(IMPORT).status_code == 403


def test_the_contact_form_normalises_and_validates_like_the_import(client, operator):
    data = {
        "name": "Ada",
        "phone": "+1 415 555 0100",
        "email": "Ada@Example.com",
        "language": "EN",
        "time_zone": "europe/london",
        "attributes": '{"plan": "gold"}',
        "sms_consent": "on",
    }
    response = client.post("/admin/campaigns/contact/add/", data)
    assert response.status_code == 302
    contact = Contact.objects.get()
    assert (contact.phone, contact.email, contact.language, contact.time_zone) == (
        "+14155550100",
        "ada@example.com",
        "en",
        "Europe/London",
    )
    response = client.post("/admin/campaigns/contact/add/", {**data, "email": "", "time_zone": "Mars/Olympus"})
    page = response.content.decode()
    assert "Another contact has this phone number." in page
    assert "is not an IANA time zone name" in page


def test_the_segment_page_shows_how_many_contacts_match_now(client, operator):
    ContactFactory(name="Ada", language="fr")
    ContactFactory(name="Bob", language="en")
    segment = segment_create(name="French", filters=[{"field": "language", "op": "eq", "value": "fr"}])
    page = client.get(f"/admin/campaigns/segment/{segment.pk}/change/").content.decode()
    assert re.search(r"<strong>1</strong> contact\b", page)
    assert ">Ada</a>" in page


def test_the_segment_form_refuses_bad_filters_by_number(client, operator):
    response = client.post(
        "/admin/campaigns/segment/add/",
        {"name": "S", "match": "all", "filters": '[{"field": "plan", "op": "eq", "value": "gold"}]'},
    )
    assert response.status_code == 200
    assert "Filter 1: unknown field &#x27;plan&#x27;" in response.content.decode()
