"""What Django would answer with an HTML page (or a 500) is a JSON 4xx on the API."""

import pytest

from deliveries.models import Message

pytestmark = pytest.mark.django_db


def test_a_form_with_too_many_fields_is_a_json_400(api):
    body = "&".join(f"f{i}=x" for i in range(1200))
    response = api.post("/api/v1/messages/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "Send the request as JSON." in response.json()["detail"]


def test_json_nested_past_the_parsers_recursion_limit_is_a_400(api):
    body = "[" * 100_000 + "]" * 100_000
    response = api.post("/api/v1/messages/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - the document is nested too deeply."}
    assert not Message.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/v1/messages/0.5/cancel/"])
def test_an_api_url_that_matches_no_route_is_a_json_404(api, path):
    response = api.post(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_url_outside_the_api_keeps_djangos_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("/api/v1/contacts/", "lists=-24613998769201512448"),
        ("/api/v1/messages/", "campaign=99999999999999999999999"),
        ("/api/v1/campaigns/", "parent=99999999999999999999999"),
    ],
)
def test_a_filter_on_an_id_past_64_bits_is_a_400_not_a_500(api, url, query):
    response = api.get(f"{url}?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [query.split("=")[0]]


@pytest.mark.parametrize(
    ("url", "payload", "field"),
    [
        ("/api/v1/contacts/", {"name": "Ada", "phone": "+14155550101", "lists": [2**70]}, "lists"),
        ("/api/v1/campaigns/", {"name": "Spring", "contact_list": 2**70}, "contact_list"),
        ("/api/v1/campaigns/", {"name": "Spring", "segment": -(2**70)}, "segment"),
    ],
)
def test_a_related_id_past_64_bits_in_a_body_is_a_400_naming_the_field(api, url, payload, field):
    response = api.post(url, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
