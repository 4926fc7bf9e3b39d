"""An erased person's suppression entry, kept as a keyed hash: every check of the list still finds it."""

import pytest

from deliveries.models import Status, Suppression
from deliveries.services.messages import message_create, message_request_validate
from deliveries.services.suppression import (
    suppression_add,
    suppression_for,
    suppression_lift,
    suppressions_blocking,
)
from deliveries.services.suppression_hashes import suppression_hash, suppression_hash_keys
from tests.factories import MessageFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db

Reason = Suppression.Reason
NUMBER = "+14155550123"


def hashed_entry(channel="sms", address=NUMBER, reason=Reason.OPT_OUT) -> Suppression:
    """An entry as erasure leaves it: no address, its hash."""
    return Suppression.objects.create(
        channel=channel, address=None, address_hash=suppression_hash(address), reason=reason
    )


def test_a_hashed_entry_blocks_a_marketing_message_to_that_address_and_no_other():
    entry = hashed_entry()
    to_them = MessageFactory(recipient=NUMBER)
    to_someone_else = MessageFactory(recipient="+14155550124")
    transactional = MessageFactory(recipient=NUMBER, category="transactional")

    assert suppressions_blocking([to_them, to_someone_else, transactional]) == {to_them.pk: entry}


def test_an_email_entry_is_hashed_in_lower_case_so_any_case_of_the_address_matches():
    entry = hashed_entry(channel="email", address="ada.l@example.com")
    message = MessageFactory(channel="email", recipient="Ada.L@example.com")
    assert suppressions_blocking([message]) == {message.pk: entry}
    assert suppression_for(channel="email", address="ADA.L@EXAMPLE.COM") == entry


@pytest.mark.django_db(transaction=True)
def test_the_worker_ends_a_message_to_a_hashed_address_suppressed_without_naming_the_address(sms_outbox):
    hashed_entry()
    request, content = message_request_validate(channel="sms", to=NUMBER, body="News")
    message = message_create(request=request, content=content)

    run_burst_worker()

    message.refresh_from_db()
    assert message.status == Status.SUPPRESSED
    assert sms_outbox == []
    assert message.last_error_message.startswith("Not sent: this address (an erased person's, kept as a hash)")


def test_a_new_opt_out_strengthens_the_hashed_entry_and_adds_no_address():
    entry = hashed_entry()
    again = suppression_add(channel="sms", address=NUMBER, reason=Reason.HARD_BOUNCE, source="Twilio 21610")
    assert again.pk == entry.pk
    assert Suppression.objects.count() == 1
    entry.refresh_from_db()
    assert (entry.address, entry.reason) == (None, Reason.HARD_BOUNCE)


def test_a_start_reply_lifts_the_hashed_opt_out():
    hashed_entry()
    assert suppression_lift(channel="sms", address=NUMBER) is True
    assert not Suppression.objects.exists()


def test_lifting_a_hashed_bounce_needs_a_person_as_for_any_bounce():
    hashed_entry(reason=Reason.HARD_BOUNCE)
    assert suppression_lift(channel="sms", address=NUMBER) is False
    assert Suppression.objects.count() == 1


def test_an_empty_address_matches_no_hashed_entry():
    hashed_entry()
    with pytest.raises(ValueError, match="empty address"):
        suppression_lift(channel="sms", address=" ")
    assert Suppression.objects.count() == 1


def test_hashes_made_before_the_key_was_set_or_rotated_still_match(settings):
    settings.SUPPRESSION_HASH_KEY = ""
    derived = hashed_entry()  # made with the key derived from SECRET_KEY (development's default)
    settings.SUPPRESSION_HASH_KEY = "first-key"
    first = hashed_entry(address="+14155550125")
    settings.SUPPRESSION_HASH_KEY = "second-key"
    settings.SUPPRESSION_HASH_KEY_FALLBACKS = ["first-key"]
    messages = [MessageFactory(recipient=NUMBER), MessageFactory(recipient="+14155550125")]

    assert suppressions_blocking(messages) == {messages[0].pk: derived, messages[1].pk: first}


def test_a_key_dropped_from_the_fallbacks_no_longer_matches_its_hashes(settings):
    """Why the key must never change without its fallback: the opt-out silently stops holding."""
    settings.SUPPRESSION_HASH_KEY = "first-key"
    hashed_entry()
    settings.SUPPRESSION_HASH_KEY = "second-key"
    assert suppressions_blocking([MessageFactory(recipient=NUMBER)]) == {}


def test_the_current_key_makes_new_hashes_and_each_key_is_tried_once(settings):
    settings.SUPPRESSION_HASH_KEY = "current"
    settings.SUPPRESSION_HASH_KEY_FALLBACKS = ["current", "older"]
    keys = suppression_hash_keys()
    assert keys[:2] == (b"current", b"older")
    assert len(keys) == len(set(keys)) == 3  # and the one derived from SECRET_KEY


def test_the_hash_is_not_the_address_nor_a_plain_sha256_of_it():
    import hashlib

    digest = suppression_hash(NUMBER)
    assert len(digest) == 64 and NUMBER not in digest
    assert digest != hashlib.sha256(NUMBER.encode()).hexdigest()


def test_in_the_admin_an_erased_entry_is_found_by_its_address_and_a_superuser_can_lift_it(client):
    from django.contrib.auth.models import User

    entry = hashed_entry()
    client.force_login(User.objects.create_superuser("root", "root@tidings.test", "pw"))

    listing = client.get("/admin/deliveries/suppression/", {"q": NUMBER}).content.decode()
    assert "(erased person, kept as a hash)" in listing and f"/{entry.pk}/change/" in listing
    assert (
        f"/{entry.pk}/change/"
        not in client.get("/admin/deliveries/suppression/", {"q": "+14155550999"}).content.decode()
    )

    response = client.post(f"/admin/deliveries/suppression/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Suppression.objects.exists()


def test_in_the_admin_an_entry_cannot_be_added_without_an_address(client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", "root@tidings.test", "pw"))
    response = client.post("/admin/deliveries/suppression/add/", {"channel": "sms", "address": "", "reason": "manual"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Suppression.objects.exists()
