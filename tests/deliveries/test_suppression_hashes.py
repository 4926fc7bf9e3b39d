"""An erased person's suppression entry, kept as a keyed hash: every check of the list still finds it."""

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from deliveries.models import Status, Suppression
from deliveries.services.erasure import PersonAddress, recipient_data_erase
from deliveries.services.messages import message_create, message_request_validate
from deliveries.services.suppression import (
    _strengthen,
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


def test_a_new_bounce_strengthens_the_hashed_entry_and_adds_no_address_not_even_in_its_detail():
    """A message sent to them after the erasure (a transactional one passes an opt-out) bounces."""
    entry = hashed_entry()
    bounced = MessageFactory(recipient=NUMBER, status=Status.UNDELIVERED)
    again = suppression_add(
        channel="sms",
        address=NUMBER,
        reason=Reason.HARD_BOUNCE,
        source="Twilio 30005",
        detail=f"Unknown destination {NUMBER}",
        message=bounced,
    )
    assert again.pk == entry.pk
    assert Suppression.objects.count() == 1
    entry.refresh_from_db()
    assert (entry.address, entry.reason, entry.detail, entry.message) == (None, Reason.HARD_BOUNCE, "", None)


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


def test_hashes_made_with_a_rotated_key_still_match(settings):
    settings.SUPPRESSION_HASH_KEY = "first-key"
    first = hashed_entry()
    settings.SUPPRESSION_HASH_KEY = "second-key"
    settings.SUPPRESSION_HASH_KEY_FALLBACKS = ["first-key"]
    second = hashed_entry(address="+14155550125")
    messages = [MessageFactory(recipient=NUMBER), MessageFactory(recipient="+14155550125")]

    assert suppressions_blocking(messages) == {messages[0].pk: first, messages[1].pk: second}


def test_without_a_key_of_its_own_hashes_made_with_an_earlier_secret_key_still_match(settings):
    settings.SUPPRESSION_HASH_KEY = ""
    settings.SECRET_KEY = "old-secret-key-" + "x" * 40
    derived = hashed_entry()  # development's default: a key derived from SECRET_KEY
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "new-secret-key-" + "y" * 40

    message = MessageFactory(recipient=NUMBER)
    assert suppressions_blocking([message]) == {message.pk: derived}


def test_a_key_dropped_from_the_fallbacks_no_longer_matches_its_hashes(settings):
    """Why the key must never change without its fallback: the opt-out silently stops holding."""
    settings.SUPPRESSION_HASH_KEY = "first-key"
    hashed_entry()
    settings.SUPPRESSION_HASH_KEY = "second-key"
    assert suppressions_blocking([MessageFactory(recipient=NUMBER)]) == {}


def test_with_a_key_of_its_own_each_address_is_probed_with_its_keys_only(settings):
    """The worker hashes every recipient with every key: none derived from SECRET_KEY once a key is set."""
    settings.SUPPRESSION_HASH_KEY = "current"
    settings.SUPPRESSION_HASH_KEY_FALLBACKS = ["current", "older"]
    settings.SECRET_KEY_FALLBACKS = ["an-old-secret-key-" + "z" * 40]
    assert suppression_hash_keys() == (b"current", b"older")


def test_with_a_clear_opt_out_and_a_hashed_bounce_the_bounce_stops_even_a_transactional_message():
    """Opted out again after an erasure that kept a hard bounce: the stronger entry decides, whichever is clear."""
    bounce = hashed_entry(reason=Reason.HARD_BOUNCE)
    Suppression.objects.create(channel="sms", address=NUMBER, reason=Reason.OPT_OUT)
    transactional = MessageFactory(recipient=NUMBER, category="transactional")

    assert suppressions_blocking([transactional]) == {transactional.pk: bounce}


def test_a_bounce_that_read_the_entry_before_an_erasure_hashed_it_writes_no_address_back():
    """The race: a bounce reads the clear entry, an erasure hashes it, then the bounce strengthens what it read."""
    Suppression.objects.create(channel="sms", address=NUMBER, reason=Reason.OPT_OUT)
    read_by_the_bounce = Suppression.objects.get()
    recipient_data_erase(addresses=[PersonAddress("sms", NUMBER)])

    values = {"reason": Reason.HARD_BOUNCE, "source": "Twilio 30005", "detail": f"{NUMBER} is unknown"}
    _strengthen(read_by_the_bounce, {**values, "message": None, "created_by": None})

    entry = Suppression.objects.get()
    assert (entry.address, entry.address_hash) == (None, suppression_hash(NUMBER))
    assert (entry.reason, entry.detail) == (Reason.HARD_BOUNCE, "")


def test_an_entry_with_neither_address_nor_hash_is_refused_by_the_database():
    with pytest.raises(IntegrityError):
        Suppression.objects.create(channel="sms", address=None, address_hash=None)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner and catalogue")
def test_the_workers_lookup_by_hash_uses_the_small_partial_index_and_the_check_is_validated():
    hashed_entry()
    # Enough clear entries on the channel that the channel alone is no way in, as on a real list.
    Suppression.objects.bulk_create(Suppression(channel="sms", address=f"+1415600{n:04d}") for n in range(5000))
    with CaptureQueriesContext(connection) as queries:
        suppressions_blocking([MessageFactory(recipient=NUMBER)])
    lookup = next(query["sql"] for query in queries if "address_hash" in query["sql"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deliveries_suppression")
        cursor.execute("EXPLAIN " + lookup)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'suppression_channel_address_hash'")
        (index,) = cursor.fetchone()
        cursor.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'suppression_has_address_or_hash'")
        (validated,) = cursor.fetchone()
    assert "Bitmap Index Scan on suppression_channel_address_hash" in plan, plan
    assert index.endswith("WHERE (address_hash IS NOT NULL)"), index
    assert validated is True


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
