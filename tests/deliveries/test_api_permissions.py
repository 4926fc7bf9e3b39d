"""Each API endpoint needs its scope (deliveries.api.permissions); a key without `admin` sees only its own
messages and batches."""

from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from deliveries.models import ApiScope, Message
from deliveries.services.api_keys import api_key_create

pytestmark = pytest.mark.django_db

SEND, READ, CANCEL = ApiScope.MESSAGES_SEND, ApiScope.MESSAGES_READ, ApiScope.MESSAGES_CANCEL
TEMPLATES, CONTACTS, CAMPAIGNS = ApiScope.TEMPLATES_MANAGE, ApiScope.CONTACTS_MANAGE, ApiScope.CAMPAIGNS_MANAGE
BATCHES = ApiScope.BATCHES_SEND
DETAIL = ("get", "put", "patch", "delete")

# Every operation of the API and the scope it needs. The schema test below keeps this table complete.
ROUTES = [
    ("post", "/api/v1/messages/", SEND),
    ("get", "/api/v1/messages/", READ),
    ("get", "/api/v1/messages/{id}/", READ),
    ("get", "/api/v1/messages/summary/", READ),
    ("post", "/api/v1/messages/{id}/cancel/", CANCEL),
    ("post", "/api/v1/messages/{id}/release/", ApiScope.ADMIN),  # overrides a spend cap
    ("post", "/api/v1/messages/batch/", BATCHES),
    ("get", "/api/v1/batches/", READ),
    ("get", "/api/v1/batches/{id}/", READ),
    ("get", "/api/v1/templates/", TEMPLATES),
    ("post", "/api/v1/templates/", TEMPLATES),
    *((method, "/api/v1/templates/{id}/", TEMPLATES) for method in DETAIL),
    ("post", "/api/v1/templates/{id}/translations/", TEMPLATES),
    *(
        (method, f"/api/v1/{collection}/", CONTACTS)
        for collection in ("contacts", "lists", "segments")
        for method in ("get", "post")
    ),
    *(
        (method, f"/api/v1/{collection}/{{id}}/", CONTACTS)
        for collection in ("contacts", "lists", "segments")
        for method in DETAIL
    ),
    ("post", "/api/v1/lists/{id}/add/", CONTACTS),
    ("post", "/api/v1/lists/{id}/remove/", CONTACTS),
    ("get", "/api/v1/campaigns/", CAMPAIGNS),
    ("post", "/api/v1/campaigns/", CAMPAIGNS),
    *((method, "/api/v1/campaigns/{id}/", CAMPAIGNS) for method in DETAIL),
    *(("post", f"/api/v1/campaigns/{{id}}/{verb}/", CAMPAIGNS) for verb in ("launch", "pause", "resume", "cancel")),
]


def client_for(*scopes, name="client"):
    api_key, raw = api_key_create(name=name, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.api_key = api_key
    return client


def call(client, method, path, data=None):
    return getattr(client, method)(path.replace("{id}", "999999"), data or {}, format="json")


def test_the_table_names_every_operation_of_the_api():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        (method, path)
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations == {(method, path) for method, path, _ in ROUTES}


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_a_key_without_the_scope_of_an_endpoint_is_refused_with_403_naming_it(method, path, scope):
    others = [other for other in ApiScope.values if other not in (scope, ApiScope.ADMIN)]
    response = call(client_for(*others), method, path)
    assert response.status_code == 403
    assert response.json() == {"detail": f"This key lacks the scope {scope}."}


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_a_key_with_only_the_scope_of_an_endpoint_gets_past_the_check(method, path, scope):
    response = call(client_for(scope), method, path)
    # 404 for the missing id, 400 for the empty body: anything but the refusal.
    assert response.status_code != 403, response.content


def test_the_api_root_needs_only_a_valid_key():
    assert client_for(ApiScope.MESSAGES_READ).get("/api/v1/").status_code == 200
    assert APIClient().get("/api/v1/").status_code == 401


def test_a_key_with_no_scopes_can_do_nothing():
    api_key, raw = api_key_create(name="nothing", scopes=[ApiScope.MESSAGES_READ])
    api_key.scopes = []
    api_key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.get("/api/v1/messages/")
    assert response.status_code == 403
    assert response.json() == {"detail": "This key lacks the scope messages:read."}


def sms(**overrides):
    return {"channel": "sms", "to": "+14155550100", "body": "Your code is 1234", **overrides}


def test_a_transactional_message_needs_the_transactional_scope_too():
    sender = client_for(SEND)
    response = sender.post("/api/v1/messages/", sms(category="transactional"), format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "This key lacks the scope transactional:send."}
    assert not Message.objects.exists()
    assert sender.post("/api/v1/messages/", sms(), format="json").status_code == 201

    both = client_for(SEND, ApiScope.TRANSACTIONAL_SEND, name="both")
    response = both.post("/api/v1/messages/", sms(category="transactional"), format="json")
    assert response.status_code == 201
    assert response.json()["category"] == "transactional"


def test_transactional_items_of_a_batch_are_refused_one_by_one_without_the_scope():
    client = client_for(BATCHES)
    payload = {"messages": [sms(), sms(category="transactional"), sms(to="+14155550101")]}
    response = client.post("/api/v1/messages/batch/", payload, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][1] == {"index": 1, "errors": {"category": ["This key lacks the scope transactional:send."]}}
    assert Message.objects.filter(category="transactional").count() == 0

    # Through the serializer's path too (a non-string field makes the item skip the fast path).
    payload = {"defaults": {"category": "transactional"}, "messages": [sms(valid_for=60)], "atomic": True}
    response = client.post("/api/v1/messages/batch/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["results"][0]["errors"] == {"category": ["This key lacks the scope transactional:send."]}


@pytest.fixture
def two_keys():
    """Two clients with every scope but admin, each with a scheduled message and a batch of its own."""
    clients = [client_for(*[s for s in ApiScope.values if s != ApiScope.ADMIN], name=name) for name in ("a", "b")]
    for client in clients:
        response = client.post(
            "/api/v1/messages/", sms(send_at=(timezone.now() + timedelta(days=30)).isoformat()), format="json"
        )
        client.message_id = response.json()["id"]
        response = client.post("/api/v1/messages/batch/", {"messages": [sms()]}, format="json")
        client.batch_id = response.json()["batch_id"]
    return clients


def test_a_key_without_admin_lists_and_reads_only_its_own_messages_and_batches(two_keys):
    a, b = two_keys
    listed = [m["id"] for m in a.get("/api/v1/messages/").json()["results"]]
    assert a.message_id in listed
    assert b.message_id not in listed
    assert len(listed) == 2  # its scheduled message and its batch's
    assert a.get(f"/api/v1/messages/{b.message_id}/").status_code == 404
    assert a.get("/api/v1/messages/summary/").json()["total"] == 2
    assert [batch["id"] for batch in a.get("/api/v1/batches/").json()["results"]] == [a.batch_id]
    assert a.get(f"/api/v1/batches/{b.batch_id}/").status_code == 404


def test_a_key_without_admin_cannot_cancel_another_keys_message(two_keys):
    a, b = two_keys
    assert a.post(f"/api/v1/messages/{b.message_id}/cancel/").status_code == 404
    assert Message.objects.get(pk=b.message_id).status == "scheduled"
    assert a.post(f"/api/v1/messages/{a.message_id}/cancel/").status_code == 200


def test_a_key_without_admin_cannot_make_a_message_wait_for_another_keys(two_keys):
    a, b = two_keys
    response = a.post("/api/v1/messages/", sms(depends_on=b.message_id), format="json")
    assert response.status_code == 400
    # The same answer as for a message that does not exist: nothing is learnt about b's messages.
    assert response.json() == {"depends_on": [f"No message with id {b.message_id}."]}
    assert a.post("/api/v1/messages/", sms(depends_on=a.message_id), format="json").status_code == 201


def test_an_admin_key_sees_and_cancels_every_message(two_keys):
    a, b = two_keys
    admin = client_for(ApiScope.ADMIN)
    listed = {m["id"] for m in admin.get("/api/v1/messages/").json()["results"]}
    assert {a.message_id, b.message_id} <= listed
    assert len(admin.get("/api/v1/batches/").json()["results"]) == 2
    assert admin.post(f"/api/v1/messages/{b.message_id}/cancel/").status_code == 200


def test_a_key_made_without_scopes_keeps_full_access(two_keys):
    a, b = two_keys
    legacy, raw = api_key_create(name="legacy")
    assert legacy.scopes == ["admin"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"/api/v1/messages/{b.message_id}/").status_code == 200
    assert client.post("/api/v1/messages/", sms(category="transactional"), format="json").status_code == 201
    assert client.get("/api/v1/campaigns/").status_code == 200
