"""The API's schema and Swagger UI: behind an API key or a staff session, and served without any CDN."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_anonymous_callers_get_neither_the_schema_nor_the_docs(client):
    for url in ("/api/schema/", "/api/docs/"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Bearer"


def test_a_client_with_an_api_key_reads_the_schema(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/messages/" in response.content


def test_staff_signed_in_to_the_admin_read_the_docs_and_the_schema(client):
    client.force_login(get_user_model().objects.create_user("ops", is_staff=True))
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_a_signed_in_user_who_is_not_staff_gets_nothing(client):
    client.force_login(get_user_model().objects.create_user("someone"))
    assert client.get("/api/schema/").status_code == 403


def test_api_docs_public_opens_them_to_anyone(client, settings):
    settings.API_DOCS_PUBLIC = True
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_swagger_ui_comes_from_our_static_files_not_a_cdn(admin_client):
    page = admin_client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn." not in page and "@latest" not in page
