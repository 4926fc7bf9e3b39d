"""MAX_REQUEST_BYTES: a body over it is refused with a JSON 413 on every endpoint, before anything reads it."""

import json

import pytest

from deliveries.models import Message

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/v1/messages/", "/api/v1/messages/batch/", "/api/v1/templates/", "/api/v1/contacts/"]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_body_over_max_request_bytes_gets_a_json_413_naming_the_limit(api, url):
    body = json.dumps({"channel": "sms", "to": "+14155550100", "body": "x" * (5 * 1024 * 1024)})
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f"The request body is {len(body):,} bytes; the limit is 5,242,880 bytes (MAX_REQUEST_BYTES).",
        "limit_bytes": 5_242_880,
    }
    assert not Message.objects.exists()


def test_the_limit_is_the_setting_and_a_body_within_it_goes_through(api, settings):
    settings.MAX_REQUEST_BYTES = 200
    small = {"channel": "sms", "to": "+14155550100", "body": "Hi"}
    assert api.post("/api/v1/messages/", small, format="json").status_code == 201
    large = {**small, "body": "x" * 200}
    assert api.post("/api/v1/messages/", large, format="json").status_code == 413


def test_a_chunked_body_without_a_length_is_refused_rather_than_read_as_empty(api):
    response = api.post(
        "/api/v1/messages/", b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH=""
    )
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]


def test_a_content_length_that_is_not_a_number_is_a_400(api):
    response = api.post("/api/v1/messages/", b"{}", content_type="application/json", CONTENT_LENGTH="-5")
    assert response.status_code == 400
    assert response.json() == {"detail": "The Content-Length header is not a number of bytes."}


def test_django_refuses_form_bodies_over_the_same_limit(settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.MAX_REQUEST_BYTES
