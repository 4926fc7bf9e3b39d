"""The campaigns API: templates, contacts, lists and campaigns with launch / pause / resume / cancel."""

import pytest

from campaigns.models import Campaign, Contact
from deliveries.models import Message, Status
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_templates_are_checked_on_write_and_take_translations(api):
    bad = api.post(
        "/api/v1/templates/",
        {"name": "Hi", "slug": "hi", "channel": "sms", "body": "Hi {{ plan }}", "variables": {}},
        format="json",
    )
    assert bad.status_code == 400
    assert "'plan' is not a declared variable" in bad.json()["body"][0]
    created = api.post(
        "/api/v1/templates/",
        {"name": "Hi", "slug": "hi", "channel": "sms", "body": "Hi {{ name }}", "variables": {"name": None}},
        format="json",
    ).json()
    translated = api.post(
        f"/api/v1/templates/{created['id']}/translations/", {"language": "fr", "body": "Salut {{ name }}"}
    )
    assert translated.status_code == 200
    assert translated.json()["translations"] == [
        {"language": "fr", "subject": "", "body": "Salut {{ name }}", "html_body": ""}
    ]
    changed = api.patch(f"/api/v1/templates/{created['id']}/", {"body": "Hey {{ nom }}"}, format="json")
    assert changed.status_code == 400


def test_contacts_are_normalised_unique_and_join_lists(api):
    newsletter = api.post("/api/v1/lists/", {"name": "Newsletter"}).json()
    response = api.post(
        "/api/v1/contacts/",
        {"name": "Ada", "phone": "+1 415 555 0101", "time_zone": "europe/paris", "lists": [newsletter["id"]]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    contact = response.json()
    assert (contact["phone"], contact["time_zone"], contact["lists"]) == (
        "+14155550101",
        "Europe/Paris",
        [newsletter["id"]],
    )
    again = api.post("/api/v1/contacts/", {"phone": "+14155550101"}, format="json")
    assert again.status_code == 400
    assert "Another contact has this phone number." in str(again.json())
    assert api.get("/api/v1/contacts/?phone=%2B14155550101").json()["count"] == 1

    other = api.post("/api/v1/contacts/", {"email": "grace@example.com"}, format="json").json()
    listed = api.post(f"/api/v1/lists/{newsletter['id']}/add/", {"contacts": [other["id"]]}, format="json")
    assert listed.json()["contact_count"] == 2
    removed = api.post(f"/api/v1/lists/{newsletter['id']}/remove/", {"contacts": [other["id"]]}, format="json")
    assert removed.json()["contact_count"] == 1


def test_a_campaign_is_drafted_launched_paused_resumed_and_cancelled_through_the_api(api, sms_outbox):
    template = api.post(
        "/api/v1/templates/",
        {"name": "Sale", "slug": "sale", "channel": "sms", "body": "Sale for {{ name }}", "variables": {"name": None}},
        format="json",
    ).json()
    audience = api.post("/api/v1/lists/", {"name": "Buyers"}).json()
    for i in range(3):
        api.post(
            "/api/v1/contacts/",
            {"name": f"P{i}", "phone": f"+1415555010{i}", "sms_consent": True, "lists": [audience["id"]]},
            format="json",
        )
    draft = api.post("/api/v1/campaigns/", {"name": "Spring"}, format="json").json()
    assert draft["status"] == "draft"
    assert set(draft["launch_problems"]) == {"template", "contact_list"}
    refused = api.post(f"/api/v1/campaigns/{draft['id']}/launch/")
    assert refused.status_code == 400
    assert "template" in refused.json()

    url = f"/api/v1/campaigns/{draft['id']}/"
    api.patch(url, {"template": template["slug"], "contact_list": audience["id"]}, format="json")
    launched = api.post(url + "launch/")
    assert launched.status_code == 200, launched.json()
    assert launched.json()["status"] == "running"
    assert api.patch(url, {"name": "Renamed"}, format="json").status_code == 409
    assert api.delete(url).status_code == 409
    assert api.delete(f"/api/v1/templates/{template['id']}/").status_code == 409

    run_burst_worker("high")  # the fan-out only; the sends stay queued
    paused = api.post(url + "pause/").json()
    assert (paused["status"], paused["progress"]["targeted"], paused["progress"]["waiting"]) == ("paused", 3, 3)
    assert api.post(url + "pause/").status_code == 409
    assert api.post(url + "resume/").json()["status"] == "running"
    cancelled = api.post(url + "cancel/").json()
    assert (cancelled["status"], cancelled["progress"]["cancelled"]) == ("cancelled", 3)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.CANCELLED}
    run_burst_worker()
    assert sms_outbox == []
    assert api.get("/api/v1/campaigns/?status=cancelled").json()["count"] == 1


def test_a_recurring_campaign_is_armed_by_launch(api):
    audience = api.post("/api/v1/lists/", {"name": "Weekly"}).json()
    Contact.objects.create(phone="+14155550101", sms_consent=True).lists.add(audience["id"])
    api.post("/api/v1/templates/", {"name": "W", "slug": "w", "channel": "sms", "body": "Weekly news"}, format="json")
    campaign = api.post(
        "/api/v1/campaigns/",
        {"name": "Weekly", "template": "w", "contact_list": audience["id"], "recurrence": "0 9 * * MON"},
        format="json",
    ).json()
    launched = api.post(f"/api/v1/campaigns/{campaign['id']}/launch/").json()
    assert launched["status"] == Campaign.Status.SCHEDULED
    assert launched["next_run_at"] is not None


def test_segments_are_checked_filter_by_filter_and_count_their_contacts(api):
    Contact.objects.create(phone="+14155550101", attributes={"plan": "gold"})
    Contact.objects.create(phone="+14155550102", attributes={"plan": "free"})
    bad = api.post("/api/v1/segments/", {"name": "Gold", "filters": [{"field": "plan", "op": "eq"}]}, format="json")
    assert bad.status_code == 400
    assert "Filter 1" in str(bad.json())
    created = api.post(
        "/api/v1/segments/",
        {"name": "Gold", "filters": [{"field": "attributes.plan", "op": "eq", "value": "gold"}]},
        format="json",
    ).json()
    assert created["contact_count"] == 1
    changed = api.patch(
        f"/api/v1/segments/{created['id']}/",
        {"filters": [{"field": "attributes.plan", "op": "set"}]},
        format="json",
    )
    assert changed.json()["contact_count"] == 2


def test_a_draft_with_an_unusable_value_is_refused_by_the_api(api):
    response = api.post("/api/v1/campaigns/", {"name": "X", "recurrence": "often", "rate_limit_per_minute": 0})
    assert response.status_code == 400
    assert set(response.json()) == {"recurrence", "rate_limit_per_minute"}
