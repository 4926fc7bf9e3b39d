"""`Idempotency-Key` on POST /api/v1/messages/: one message per key and API key, however often and however fast."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Batch, IdempotencyKey, Message
from deliveries.services.api_keys import api_key_create
from deliveries.services.idempotency import idempotency_keys_prune, idempotent_create
from tests.support import at_once

BODY = {"channel": "sms", "to": "+14155550100", "body": "Your code is 1234"}


@pytest.mark.django_db
def test_the_same_key_and_body_return_the_original_message(api):
    first = api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    again = api.post("/api/v1/messages/", dict(reversed(BODY.items())), format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_refused_with_a_clear_message(api):
    api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    response = api.post(
        "/api/v1/messages/", {**BODY, "body": "Your code is 9999"}, format="json", HTTP_IDEMPOTENCY_KEY="order-17"
    )
    assert response.status_code == 422
    assert "Idempotency-Key 'order-17' was already used" in response.json()["detail"]
    assert "with a different request" in response.json()["detail"]
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_keys_belong_to_their_api_key(api):
    other_key, raw = api_key_create(name="other-client")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    mine = api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    theirs = other.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.django_db
def test_a_malformed_key_is_refused(api):
    response = api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400
    assert "1 to 255 printable characters" in response.json()["detail"]
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_invalid_request_does_not_use_up_the_key(api):
    bad = api.post("/api/v1/messages/", {**BODY, "to": "nonsense"}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert bad.status_code == 400
    good = api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert good.status_code == 201


@pytest.mark.parametrize("key_used_a_day_before", [False, True])
@pytest.mark.django_db(transaction=True)
def test_twenty_identical_requests_at_once_create_one_message(api_key, key_used_a_day_before):
    if key_used_a_day_before:  # its record not swept yet: every request finds it past its time
        IdempotencyKey.objects.create(api_key=api_key, key="burst-1", scope="messages.create", fingerprint="old")
        _age("burst-1", 25)

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.raw}")
        return client.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="burst-1")

    responses = at_once(post, 20)
    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == 19
    assert Message.objects.count() == 1
    assert IdempotencyKey.objects.get().messages.count() == 1
    assert IdempotencyKey.objects.get().fingerprint != "old"


def _age(key: str, hours: float) -> None:
    IdempotencyKey.objects.filter(key=key).update(created_at=timezone.now() - timedelta(hours=hours))


@pytest.mark.django_db
def test_keys_past_their_time_are_pruned_and_their_messages_and_batches_stay(api, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    old = api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="old").json()
    batch = {"defaults": {"channel": "sms", "body": "Hi"}, "messages": [{"to": "+14155550101"}]}
    old_batch = api.post("/api/v1/messages/batch/", batch, format="json", HTTP_IDEMPOTENCY_KEY="old-batch").json()
    young = api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="young").json()
    _age("old", 25)
    _age("old-batch", 25)
    _age("young", 23)

    assert idempotency_keys_prune() == 2
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]
    assert Message.objects.get(pk=old["id"]).idempotency_key is None
    assert Message.objects.get(pk=young["id"]).idempotency_key.key == "young"
    assert Batch.objects.get(pk=old_batch["batch_id"]).idempotency_key is None
    assert idempotency_keys_prune() == 0


@pytest.mark.django_db
def test_pruning_goes_oldest_first_a_pass_at_a_time(api_key):
    for hours in (30, 50, 40):
        IdempotencyKey.objects.create(api_key=api_key, key=f"k{hours}", scope="messages.create", fingerprint="f")
        _age(f"k{hours}", hours)
    assert idempotency_keys_prune(limit=2) == 2
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["k30"]


@pytest.mark.django_db
def test_a_key_past_its_time_creates_afresh_even_before_it_is_pruned(api, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    first = api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    _age("order-17", 25)
    # Another body too: an expired key is not "used before with a different request".
    again = api.post("/api/v1/messages/", {**BODY, "body": "New"}, format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    assert Message.objects.count() == 2
    assert Message.objects.get(pk=first.json()["id"]).idempotency_key is None
    replay = api.post("/api/v1/messages/", {**BODY, "body": "New"}, format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == again.json()["id"]


@pytest.mark.django_db(transaction=True)  # the dispatcher closes stale connections, as between its passes
def test_the_dispatchers_reconcile_pass_prunes_keys(api):
    api.post("/api/v1/messages/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    _age("old", 48)
    call_command("run_dispatcher", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not IdempotencyKey.objects.exists()
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_key_swept_between_its_read_and_its_replay_starts_afresh(api_key):
    created = []

    def create(record):
        created.append(record.pk)
        return "created"

    def replay_after_the_sweep(record):
        IdempotencyKey.objects.filter(pk=record.pk).delete()  # the reconciler, a moment too late for this read
        return record.batch  # gone with its key: RelatedObjectDoesNotExist

    options = {"api_key": api_key, "key": "k", "scope": "messages.batch", "fingerprint": "f"}
    assert idempotent_create(**options, create=create, replay=replay_after_the_sweep) == ("created", True)
    assert idempotent_create(**options, create=create, replay=replay_after_the_sweep) == ("created", True)
    assert len(created) == 2 and IdempotencyKey.objects.get().pk == created[1]
