"""Every create and update endpoint refuses fields it does not declare, naming them, and changes nothing; what a
model leaves unbounded (text and JSON columns) is bounded."""

import pytest

from campaigns.models import Campaign, Contact, ContactList, Segment
from content.models import MessageTemplate
from tests.factories import ContactFactory, ContactListFactory, TemplateFactory

pytestmark = pytest.mark.django_db

VALID = {
    "templates": {"name": "Hi", "slug": "hi", "channel": "sms", "body": "Hi"},
    "contacts": {"name": "Ada", "phone": "+14155550101"},
    "lists": {"name": "Newsletter"},
    "segments": {"name": "French", "filters": []},
    "campaigns": {"name": "Spring"},
}
MODELS = {
    "templates": MessageTemplate,
    "contacts": Contact,
    "lists": ContactList,
    "segments": Segment,
    "campaigns": Campaign,
}


@pytest.mark.parametrize("resource", VALID)
def test_a_create_with_an_unknown_field_is_refused_naming_it(api, resource):
    response = api.post(f"/api/v1/{resource}/", {**VALID[resource], "colour": "red"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"colour": ["Unknown field."]}
    assert not MODELS[resource].objects.exists()


def existing(resource):
    if resource == "templates":
        return TemplateFactory(channel="sms", body="Hi")
    if resource == "contacts":
        return ContactFactory()
    if resource == "lists":
        return ContactListFactory()
    if resource == "segments":
        return Segment.objects.create(name="All", filters=[])
    return Campaign.objects.create(name="Spring")


@pytest.mark.parametrize("resource", VALID)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_update_with_an_unknown_field_is_refused_and_changes_nothing(api, resource, method):
    obj = existing(resource)
    url = f"/api/v1/{resource}/{obj.pk}/"
    before = api.get(url).json()
    payload = {**VALID[resource], "nmae": "Renamed"}
    if resource == "templates":
        payload["slug"] = obj.slug
    response = getattr(api, method)(url, payload, format="json")
    assert response.status_code == 400
    assert response.json() == {"nmae": ["Unknown field."]}
    assert api.get(url).json() == before


def test_read_only_fields_sent_back_with_an_update_are_not_unknown(api):
    contact_list = ContactListFactory(name="Old")
    url = f"/api/v1/lists/{contact_list.pk}/"
    current = api.get(url).json()
    response = api.put(url, {**current, "name": "New"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "New"


def test_a_translation_and_a_list_change_refuse_unknown_fields_too(api):
    template = TemplateFactory(channel="sms", body="Hi")
    response = api.post(
        f"/api/v1/templates/{template.pk}/translations/", {"language": "fr", "bdy": "Salut"}, format="json"
    )
    assert response.json() == {"bdy": ["Unknown field."]}
    contact_list = ContactListFactory()
    response = api.post(f"/api/v1/lists/{contact_list.pk}/add/", {"contacts": [], "contact": [1]}, format="json")
    assert response.json() == {"contact": ["Unknown field."]}


@pytest.mark.parametrize(
    ("resource", "payload", "field"),
    [
        ("contacts", {"name": "Ada", "phone": "+14155550101", "attributes": {"x": "\x00"}}, "attributes"),
        ("templates", {**VALID["templates"], "sample_context": {"x": "\x00"}}, "sample_context"),
        ("templates", {**VALID["templates"], "html_body": "x" * 1_000_001}, "html_body"),
        ("lists", {"name": "N", "description": "\x00"}, "description"),
        ("segments", {"name": "S", "filters": [{"field": "\x00"}]}, "filters"),
        ("campaigns", {"name": "C", "template": "news\x00"}, "template"),
    ],
)
def test_text_and_json_columns_are_bounded_and_refuse_nul(api, resource, payload, field):
    response = api.post(f"/api/v1/{resource}/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not MODELS[resource].objects.exists()
