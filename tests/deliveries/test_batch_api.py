"""POST /api/v1/messages/batch/: per-item validation, atomic or not, ids in order, chunked storage."""

import django_rq
import pytest

from deliveries.models import Batch, Message, MessageEvent, Status
from deliveries.services.batches import batch_outcome_replay
from tests.deliveries.test_bulk import inserts_needed
from tests.factories import TemplateFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/messages/batch/"


def test_each_item_is_validated_like_a_single_message_and_the_valid_ones_are_stored(api, sms_outbox):
    TemplateFactory(slug="welcome", body="Welcome {{ name }}", variables={"name": None})
    response = api.post(
        URL,
        {
            "defaults": {"channel": "sms", "template": "welcome", "priority": "high"},
            "messages": [
                {"to": "+14155550101", "context": {"name": "Ada"}},
                {"to": "555-12", "context": {"name": "Bad"}},
                {"to": "+14155550103", "context": {}},
                {"to": "ada@example.com", "channel": "email", "template": None, "subject": "Hi", "body": "Hello"},
                "not an object",
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 3)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert "is not a phone number" in results[1]["errors"]["to"][0]
    assert "Missing variable(s) in body: 'name'" in results[2]["errors"]["template"][0]
    assert results[4]["errors"] == {"non_field_errors": ["Each message must be a JSON object."]}
    first = Message.objects.get(pk=results[0]["id"])
    email = Message.objects.get(pk=results[3]["id"])
    assert (first.body, first.priority, first.batch_id) == ("Welcome Ada", "high", body["batch_id"])
    assert (email.channel, email.subject, email.priority) == ("email", "Hi", "high")
    batch = Batch.objects.get(pk=body["batch_id"])
    assert (batch.kind, batch.accepted, batch.rejected, batch.api_key.name) == ("api", 2, 3, "test-client")
    run_burst_worker()
    assert [m.body for m in sms_outbox] == ["Welcome Ada"]
    detail = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert detail["by_status"] == {"sent": 2}


def test_an_atomic_batch_with_one_invalid_item_stores_nothing(api):
    response = api.post(
        URL,
        {
            "defaults": {"channel": "sms", "body": "Hi"},
            "messages": [{"to": "+14155550101"}, {"to": "nope"}],
            "atomic": True,
        },
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["batch_id"], body["accepted"], body["rejected"]) == (None, 0, 1)
    assert body["results"][0]["index"] == 1 and "to" in body["results"][0]["errors"]
    assert not Message.objects.exists() and not Batch.objects.exists()


def test_an_atomic_batch_of_valid_items_is_stored_whole_and_queued(api, clean_redis):
    response = api.post(
        URL,
        {"defaults": {"channel": "sms", "body": "Hi"}, "messages": [{"to": "+14155550101"}], "atomic": True},
        format="json",
    )
    assert response.status_code == 201
    assert Message.objects.get().status == Status.QUEUED
    assert django_rq.get_queue("default").count == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "x"}, "messages"),
        ({"defaults": [], "messages": [{}]}, "defaults"),
    ],
)
def test_a_malformed_batch_is_refused_whole(api, payload, field):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Message.objects.exists()


def test_a_batch_of_more_than_10000_messages_is_refused_whole_with_413_naming_both_limits(api, settings):
    response = api.post(URL, {"messages": [{}] * 10_001}, format="json")
    assert response.status_code == 413
    body = response.json()
    assert body["messages"] == ["10,001 messages; a batch takes at most 10,000."]
    assert (body["limit_messages"], body["limit_bytes"]) == (10_000, settings.MAX_REQUEST_BYTES)
    assert "10,000 messages and 5,242,880 bytes" in body["detail"]
    assert not Message.objects.exists()


def test_a_batch_needs_an_api_key(client):
    assert client.post(URL, {"messages": [{}]}, content_type="application/json").status_code == 401


def test_10000_messages_in_one_batch_are_stored_in_a_handful_of_queries(api, django_assert_max_num_queries, settings):
    settings.SEND_BATCH_SIZE = 500
    TemplateFactory(slug="receipt", body="Order {{ order }} shipped", variables={"order": None})
    messages = [{"to": f"+1415{7000000 + i}", "context": {"order": i}} for i in range(10_000)]
    # Multi-row INSERTs (as many rows per statement as the database takes), not one per message.
    # Besides the INSERTs: the API key, the templates, the batch row and its answer, a transaction per chunk.
    budget = inserts_needed(Message, 10_000) + inserts_needed(MessageEvent, 10_000) + 30
    with django_assert_max_num_queries(budget):
        response = api.post(
            URL, {"defaults": {"channel": "sms", "template": "receipt"}, "messages": messages}, format="json"
        )
    assert response.status_code == 201
    assert response.json()["accepted"] == 10_000
    assert Message.objects.filter(status=Status.QUEUED).count() == 10_000
    assert django_rq.get_queue("default").count == 20


def test_a_stored_batch_keeps_its_answer_for_a_repeat_of_the_request(api):
    payload = {"defaults": {"channel": "sms", "body": "Hi"}, "messages": [{"to": "+14155550101"}, {"to": "x"}]}
    body = api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="kept").json()
    batch = Batch.objects.get(pk=body["batch_id"])
    assert batch_outcome_replay(batch=batch).as_response() == body
    assert batch.finished_at is not None
    # Without a key no request can repeat it, so the answer is not stored; the batch is finished all the same.
    payload["messages"] = [{"to": "+14155550102"}]
    body = api.post(URL, payload, format="json").json()
    batch = Batch.objects.get(pk=body["batch_id"])
    assert (batch.response, batch.accepted, batch.finished_at is not None) == ({}, 1, True)


def batch_payload(count=3, **defaults):
    return {
        "defaults": {"channel": "sms", "body": "Hello", **defaults},
        "messages": [{"to": f"+1415{7000000 + i}"} for i in range(count)],
    }


def test_the_same_idempotency_key_returns_the_original_answer_and_stores_nothing_twice(api):
    first = api.post(URL, batch_payload(), format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    again = api.post(URL, batch_payload(), format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Message.objects.count() == 3
    assert Batch.objects.count() == 1


def test_the_same_key_with_another_batch_is_refused_with_422(api):
    api.post(URL, batch_payload(), format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    other = api.post(URL, batch_payload(body="Something else"), format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    assert Message.objects.count() == 3


def test_a_refused_atomic_batch_does_not_use_up_its_key(api):
    bad = batch_payload()
    bad["atomic"] = True
    bad["messages"].append({"to": "not-a-number"})
    refused = api.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert refused.status_code == 400
    assert Message.objects.count() == 0
    corrected = api.post(URL, {**batch_payload(), "atomic": True}, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert corrected.status_code == 201
    assert corrected.json()["accepted"] == 3


def test_a_row_to_a_country_not_allowed_is_reported_in_its_result_and_the_others_are_stored(api, api_key, settings):
    settings.WHATSAPP_ALLOWED_COUNTRIES = ["GB", "US"]
    api_key.allowed_countries = ["US"]
    api_key.save()
    response = api.post(
        URL,
        {
            "defaults": {"channel": "whatsapp", "body": "Hi"},
            "messages": [{"to": "+14155550101"}, {"to": "+5511987654321"}, {"to": "+447400123456"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert body["results"][1]["errors"] == {
        "to": ["Sending whatsapp to BR is not allowed (WHATSAPP_ALLOWED_COUNTRIES: GB, US)."]
    }
    refused_by_key = "Sending whatsapp to GB is not allowed (this API key's countries: US)."
    assert body["results"][2]["errors"] == {"to": [refused_by_key]}
    assert list(Message.objects.values_list("recipient", flat=True)) == ["+14155550101"]
