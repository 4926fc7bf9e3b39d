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
    assert "2 rows rejected: nothing was imported" in page
    assert "&#x27;555&#x27; is not a phone number" in page
    assert not Contact.objects.exists()


def test_the_admin_import_refuses_a_file_without_phone_or_email(client, operator):
    response = upload(client, "name,plan\nAda,gold\n")
    assert "needs a &#x27;phone&#x27; or an &#x27;email&#x27; column" in response.content.decode()
    assert not Contact.objects.exists()


def rejected_rows_table(page):
    """The rows of the result page's table of rejected rows, as the text of their cells (tags removed)."""
    table = re.search(r'<table id="rejected-rows".*?</table>', page, re.S)
    assert table, "no table of rejected rows"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0).split("<tbody>")[1], re.S)
    cell_text = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    return [[" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells] for cells in cell_text]


def test_the_admin_import_shows_each_rejected_row_with_its_reasons_and_cells_in_a_table(client, operator):
    response = upload(client, "name,phone,email,Plan\nAda,+14155550100,,gold\nBob,555,bob@,silver\nZoe,,,gold\n")
    page = response.content.decode()
    assert "2 rows rejected: nothing was imported" in page
    assert rejected_rows_table(page) == [
        [
            "3",
            "phone : &#x27;555&#x27; is not a phone number. Use E.164 format with the country code, like "
            "+14155550100. email : &#x27;bob@&#x27; is not a valid email address.",
            "name: Bob · phone: 555 · email: bob@ · plan: silver",
        ],
        ["4", "The row has neither a phone number nor an email address.", "name: Zoe · plan: gold"],
    ]
    assert "validation-error-container" not in page  # the package's reasons shown only on hover
    assert not Contact.objects.exists()


def test_the_admin_import_escapes_the_cells_and_reasons_it_shows(client, operator):
    page = upload(client, "name,phone,note\n<b>Eve</b>,<script>x</script>,<i>hi</i>\n").content.decode()
    [[_line, reason, cells]] = rejected_rows_table(page)
    assert "&lt;script&gt;x&lt;/script&gt;" in reason
    assert cells == "name: &lt;b&gt;Eve&lt;/b&gt; · phone: &lt;script&gt;x&lt;/script&gt; · note: &lt;i&gt;hi&lt;/i&gt;"
    assert "<script>x" not in page


def test_the_admin_import_normalises_a_00_number_in_the_dry_run_and_the_import(client, operator):
    response = upload(client, "name,phone\nAda,0044 20 7946 0958\n")
    assert "+442079460958" in response.content.decode()
    client.post(CONFIRM, {**response.context["confirm_form"].initial, "resource": ""})
    assert Contact.objects.get().phone == "+442079460958"


def test_the_import_page_explains_that_other_columns_become_attributes_usable_in_templates(client, operator):
    page = client.get(IMPORT).content.decode()
    assert "Becomes a <strong>custom attribute</strong> of each contact" in page
    assert "{{ plan }}" in page
    assert "<code>mobile</code> for phone" in page  # the column aliases, from the code
    fields = re.search(r"will import the following fields:.*?</code>", page, re.S).group(0)
    assert "attributes" not in fields  # a column named "attributes" is refused: other columns become attributes
    preview = upload(client, "name,phone,plan\nAda,+14155550100,gold\n").content.decode()
    assert "Columns other than the contact's fields are stored in <strong>attributes</strong>" in preview


def test_a_file_that_cannot_be_imported_says_why_without_a_traceback(client, operator):
    page = upload(client, "name,plan\nAda,gold\n").content.decode()
    assert "The file cannot be imported" in page
    assert "<li>The file needs a &#x27;phone&#x27; or an &#x27;email&#x27; column" in page
    assert "Traceback" not in page


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
