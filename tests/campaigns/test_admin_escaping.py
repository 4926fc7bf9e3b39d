"""Hostile content in templates, contacts, segments and campaigns is shown escaped on every admin page (issue 20's
stored XSS: content written with an API key runs as script in a superuser's browser)."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.models import Campaign, Segment
from content.models import MessageTemplate
from tests.factories import ContactFactory, ContactListFactory, TemplateFactory
from tests.support import HOSTILE, assert_shown_only_escaped

pytestmark = pytest.mark.django_db


def test_a_template_posted_with_an_api_key_is_shown_escaped_to_a_superuser(api, admin_client):
    response = api.post(
        "/api/v1/templates/",
        {
            "name": HOSTILE,
            "slug": "attack",
            "channel": "email",
            "subject": "Hi {{ name }} " + HOSTILE,
            "body": "<img src=x onerror=alert(1)>",  # the issue's own payload
            "html_body": "<p>{{ name }}</p>" + HOSTILE,
            "variables": {"name": None},
            "sample_context": {"name": HOSTILE},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    template = MessageTemplate.objects.get(slug="attack")

    page = admin_client.get(f"/admin/content/messagetemplate/{template.pk}/change/").content.decode()
    # The fields' editors, the saved preview's subject and body, and the HTML preview's frame.
    assert_shown_only_escaped(page, times=6)
    # The HTML part is shown in a frame that may run no script, its markup escaped as the attribute's value.
    assert 'sandbox="" srcdoc="&lt;p&gt;&amp;lt;img src=x' in page
    assert_shown_only_escaped(admin_client.get("/admin/content/messagetemplate/").content.decode())


def test_the_live_preview_writes_what_it_receives_as_text():
    # template_preview.js puts every value in with textContent or srcdoc: nothing it receives is parsed here.
    script = (Path(__file__).parents[2] / "campaigns/static/campaigns/template_preview.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "outerHTML" not in script


def test_a_contacts_name_and_attributes_are_shown_escaped(admin_client):
    contact = ContactFactory(name=HOSTILE, attributes={"note": HOSTILE})
    assert_shown_only_escaped(
        admin_client.get(f"/admin/campaigns/contact/{contact.pk}/change/").content.decode(), times=2
    )
    assert_shown_only_escaped(admin_client.get("/admin/campaigns/contact/").content.decode())


def test_a_segments_matching_contacts_are_listed_escaped(admin_client):
    audience = ContactListFactory(name=HOSTILE)
    ContactFactory(name=HOSTILE, lists=[audience])
    segment = Segment.objects.create(name=HOSTILE, contact_list=audience, filters=[])
    page = admin_client.get(f"/admin/campaigns/segment/{segment.pk}/change/").content.decode()
    assert_shown_only_escaped(page, times=3)
    assert_shown_only_escaped(admin_client.get("/admin/campaigns/contactlist/").content.decode())


def test_a_campaigns_name_and_its_templates_name_are_shown_escaped(admin_client):
    template = TemplateFactory(name=HOSTILE)
    campaign = Campaign.objects.create(name=HOSTILE, template=template, contact_list=ContactListFactory())
    assert_shown_only_escaped(admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode())
    assert_shown_only_escaped(admin_client.get("/admin/campaigns/campaign/").content.decode())


def test_the_import_dry_run_shows_a_files_hostile_rows_escaped(admin_client):
    hostile = HOSTILE.replace('"', '""')  # a CSV field with quotes in it
    text = f'name,phone,note\n"{hostile}",+14155550100,"{hostile}"\n"{hostile}",555,x\n'
    csv_file = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    response = admin_client.post("/admin/campaigns/contact/import/", {"import_file": csv_file, "format": "0"})
    assert response.status_code == 200
    assert_shown_only_escaped(response.content.decode())
