"""Erasing a person (`manage.py erase_person`, the contacts admin's action): after it, no text or JSON column of
any table quotes them, other people's rows are untouched, the figures are the same, and their opt-out still holds.

The person and a bystander are given the same history through the real entry points: API messages and a batch
with an Idempotency-Key, a campaign to their list, Twilio status callbacks and replies (STOP, START, STOP again,
a free text), an unsubscribe link, a receipt for a message we never sent, a contact edited in the admin, a segment
naming them.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import IContains
from django.test import Client
from django.utils import timezone

from analytics.models import HourlyRollup, MinuteRollup, RollupCursor, RollupGap
from analytics.services.rollup import analytics_rollup
from campaigns.models import Contact, ContactList, Segment
from campaigns.services.campaign_lifecycle import campaign_launch
from deliveries.models import ERASED, ArchiveErasure, AuditEntry, Message, Status, Suppression
from deliveries.services.erasure import _blank_messages
from deliveries.services.erasure_text import PersonQuotes
from deliveries.services.suppression import unsubscribe_url_for
from deliveries.services.suppression_hashes import suppression_hash
from deliveries.staff_roles import OPERATORS, staff_roles_ensure
from fake_providers.postmark import tracking_event
from tests.campaigns.campaign_support import new_campaign
from tests.factories import MessageFactory
from tests.support import run_burst_worker, run_manage, twilio_signed_post

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "test-auth-token"
PERSON = {"name": "Zebulon Quartermaine", "phone": "+14155550142", "email": "Zebulon.Q@Example.org"}
BYSTANDER = {"name": "Ottilie Brennan", "phone": "+14155550199", "email": "ottilie.b@example.net"}
TEXT_TYPES = ("CharField", "TextField", "JSONField", "SlugField", "EmailField")


@pytest.fixture(autouse=True)
def twilio_webhooks(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = "http://testserver"


def quotes_of(person: dict[str, str]) -> list[str]:
    """What would give the person away: each address (the phone also without +), the name and each half of it."""
    return [
        person["phone"],
        person["phone"][1:],
        person["email"],
        *person["name"].split(),
    ]


def stored_models() -> list:
    """Every installed model with a table of its own (django-rq's dashboard has none)."""
    return [model for model in apps.get_models() if model._meta.managed and not model._meta.proxy]


def rows_quoting(quotes: list[str]) -> list[tuple[str, Any, str, str]]:
    """Every (table, row, column, quote) where a text or JSON column of any installed model contains a quote, in
    any case, JSON's \\u escapes included: the convincing check that nothing is left."""
    hits = []
    for model in stored_models():
        for field in model._meta.concrete_fields:
            if field.get_internal_type() not in TEXT_TYPES:
                continue
            for quote in quotes:
                for form in {quote, json.dumps(quote)[1:-1]}:
                    found = model._default_manager.filter(IContains(Cast(field.name, TextField()), form))
                    hits += [(model._meta.label, pk, field.name, quote) for pk in found.values_list("pk", flat=True)]
    return hits


def snapshot() -> dict[tuple[str, Any], dict[str, Any]]:
    return {
        (model._meta.label, row["pk"]): row
        for model in stored_models()
        for row in model._default_manager.values("pk", *(f.attname for f in model._meta.concrete_fields))
    }


def rollups() -> list[tuple]:
    hourly = HourlyRollup.objects.order_by("hour", "channel", "campaign_id", "metric")
    minute = MinuteRollup.objects.order_by("minute", "channel", "priority", "metric")
    return [*hourly.values_list("hour", "channel", "campaign_id", "metric", "count")] + [
        *minute.values_list("minute", "channel", "priority", "metric", "count")
    ]


def status_callback(client, message: Message, status: str, **extra: str):
    params = {
        "MessageSid": message.provider_message_id or "SM" + "b" * 32,
        "MessageStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "To": message.recipient,
        "From": "+15005550006",
        **extra,
    }
    path = f"/webhooks/twilio/status/?message={message.pk}&attempt={message.attempts}"
    assert twilio_signed_post(client, path, params, auth_token=TOKEN).status_code == 204


def reply(client, person: dict[str, str], body: str, sid: str) -> None:
    params = {"MessageSid": sid, "From": person["phone"], "To": "+15005550006", "Body": body, "NumMedia": "0"}
    assert twilio_signed_post(client, "/webhooks/twilio/inbound/", params, auth_token=TOKEN).status_code == 200


def give_history(person: dict[str, str], *, api, client, admin_user, index: int) -> Contact:
    """Everything Tidings can come to hold about a person, through its entry points."""
    audience = ContactList.objects.create(name=f"Newsletter {index}")
    contact = Contact.objects.create(
        name=person["name"],
        phone=person["phone"],
        email=person["email"].lower(),
        sms_consent=True,
        email_consent=True,
        attributes={"nickname": person["name"].split()[0]},
    )
    contact.lists.add(audience)
    LogEntry.objects.log_actions(admin_user.pk, [contact], CHANGE, change_message=f"Renamed to {person['name']}")
    Segment.objects.create(
        name=f"Just {index}", filters=[{"field": "email", "op": "equals", "value": person["email"].lower()}]
    )
    sms = api.post(
        "/api/v1/messages/",
        {
            "channel": "sms",
            "to": person["phone"],
            "body": f"Your code, {person['name']}: 1234",
            "metadata": {"customer": person["email"]},
        },
        format="json",
    )
    assert sms.status_code == 201, sms.content
    batch = api.post(
        "/api/v1/messages/batch/",
        {
            "defaults": {"channel": "email", "subject": "News", "body": "Hello"},
            "messages": [{"to": person["email"], "context": {"who": person["name"]}}],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"news-for-{person['phone']}",
    )
    assert batch.status_code in (200, 201), batch.content
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    run_burst_worker()  # the fan-out, then every send

    for message in Message.objects.filter(recipient=person["phone"]):
        status_callback(client, message, "delivered")
    email = Message.objects.get(recipient__iexact=person["email"])
    assert Client().post(unsubscribe_url_for(email.pk).removeprefix("http://testserver")).status_code == 200
    reply(client, person, "STOP", f"SM{index}1" + "0" * 29)
    reply(client, person, "START", f"SM{index}2" + "0" * 29)  # lifting is audited, with the address
    reply(client, person, f"Hi, it's {person['name']}, write to {person['email']}", f"SM{index}3" + "0" * 29)
    reply(client, person, "STOP", f"SM{index}4" + "0" * 29)
    # A receipt about a message we do not know (yet): kept for a while, with the provider's payload.
    params = {"MessageSid": f"SM{index}5" + "0" * 29, "MessageStatus": "delivered", "To": person["phone"]}
    twilio_signed_post(client, "/webhooks/twilio/status/", params, auth_token=TOKEN)
    return contact


def email_tracking(client, settings, person: dict[str, str], message: Message | None = None) -> None:
    """An open and a click on the person's email, reported by Postmark through anymail; the link names them."""
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"  # the ESP whose webhook routes exist
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "tidings:webhook-secret"}
    message = message or Message.objects.get(recipient__iexact=person["email"])
    recorded = {
        "MessageID": message.provider_message_id or "pm-" + str(message.pk),
        "metadata": {"tidings_message_id": str(message.pk), "tidings_attempt": str(message.attempts)},
    }
    auth = "Basic " + base64.b64encode(b"tidings:webhook-secret").decode()
    for event in (
        tracking_event("Open", recorded, person["email"], first=True),
        tracking_event("Click", recorded, person["email"], url=f"https://shop.example/?who={person['email']}"),
    ):
        response = client.post(
            "/webhooks/anymail/postmark/tracking/",
            json.dumps(event),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
        )
        assert response.status_code == 200
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def histories(api, client, settings, sms_outbox):
    admin_user = User.objects.create_superuser("root", "root@tidings.test", "pw")
    person = give_history(PERSON, api=api, client=client, admin_user=admin_user, index=1)
    bystander = give_history(BYSTANDER, api=api, client=client, admin_user=admin_user, index=2)
    for someone in (PERSON, BYSTANDER):
        email_tracking(client, settings, someone)
    analytics_rollup()
    assert rows_quoting(quotes_of(PERSON)), "the scenario must give the scan something to find"
    return person, bystander


def test_after_erasure_nothing_quotes_the_person_anywhere_and_the_bystander_is_untouched(histories, capsys):
    before = snapshot()
    figures = rollups()
    quoting_person = {(table, pk) for table, pk, _, _ in rows_quoting(quotes_of(PERSON))}
    their_messages = set(
        Message.objects.filter(Q(recipient=PERSON["phone"]) | Q(recipient__iexact=PERSON["email"])).values_list(
            "pk", flat=True
        )
    )

    call_command("erase_person", phone=PERSON["phone"])

    assert rows_quoting(quotes_of(PERSON)) == []
    # The bystander's rows, and every row that did not quote the person, are exactly as they were (the person's
    # messages' other events may lose payload keys; the new rows are the audit entry of the erasure and, for the
    # archive files, the hashes of the person's addresses: a phone on SMS and WhatsApp, and their email; and the
    # archive lock's row, made by the first to take it).
    after = snapshot()
    for key, row in before.items():
        if key in quoting_person or (key[0] == "deliveries.MessageEvent" and row["message_id"] in their_messages):
            continue
        assert after.get(key) == row, key
    assert {key for key in after if key not in before} == {
        ("deliveries.AuditEntry", AuditEntry.objects.get(action=AuditEntry.Action.PERSON_ERASED).pk)
    } | {("deliveries.ArchiveErasure", pk) for pk in ArchiveErasure.objects.values_list("pk", flat=True)} | {
        ("deliveries.ArchiveCursor", "messages")  # the archive lock's row, which the erasure holds
    }
    assert sorted(ArchiveErasure.objects.values_list("channel", flat=True)) == ["email", "sms", "whatsapp"]
    assert Contact.objects.filter(name=BYSTANDER["name"]).exists()
    assert not Contact.objects.filter(name=PERSON["name"]).exists()
    # Their messages keep their place in the figures: channel, status, times; recounted from scratch, the same.
    assert Message.objects.filter(pk__in=their_messages, recipient=ERASED).count() == len(their_messages) == 3
    for model in (HourlyRollup, MinuteRollup, RollupCursor, RollupGap):
        model.objects.all().delete()
    analytics_rollup()
    assert rollups() == figures
    output = capsys.readouterr().out
    assert "Erased: +1415•••0142, z•••@example.org" in output  # masked: the output may be pasted anywhere
    assert not any(quote.lower() in output.lower() for quote in quotes_of(PERSON))
    assert "3  messages anonymised" in output


def test_the_erasure_is_audited_with_hashes_never_the_address(histories):
    call_command("erase_person", email=PERSON["email"].upper())
    entry = AuditEntry.objects.get(action=AuditEntry.Action.PERSON_ERASED)
    assert entry.actor.startswith("manage.py erase_person")
    assert entry.details["phone_hashes"] == [suppression_hash(PERSON["phone"])]
    assert entry.details["email_hashes"] == [suppression_hash(PERSON["email"].lower())]
    assert entry.details["counts"]["contacts"] == 1
    assert rows_quoting(quotes_of(PERSON)) == []


def test_the_opt_outs_still_hold_as_hashes_for_the_api_and_a_campaign(histories, api, sms_outbox):
    call_command("erase_person", phone=PERSON["phone"])
    assert set(Suppression.objects.filter(address=None).values_list("channel", "address_hash", "reason")) == {
        ("sms", suppression_hash(PERSON["phone"]), "opt_out"),
        ("email", suppression_hash(PERSON["email"].lower()), "opt_out"),
    }
    sms_outbox.clear()
    by_api = api.post("/api/v1/messages/", {"channel": "sms", "to": PERSON["phone"], "body": "Hi"}, format="json")
    by_email = api.post("/api/v1/messages/", {"channel": "email", "to": PERSON["email"], "subject": "s", "body": "b"})
    # Imported again later (same number): a new campaign to them is refused by the hashed opt-out all the same.
    audience = ContactList.objects.create(name="Re-imported")
    Contact.objects.create(name="Z", phone=PERSON["phone"], sms_consent=True).lists.add(audience)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign)
    run_burst_worker()

    for message_id in (by_api.json()["id"], by_email.json()["id"]):
        assert Message.objects.get(pk=message_id).status == Status.SUPPRESSED
    assert Message.objects.get(campaign=campaign).status == Status.SUPPRESSED
    assert sms_outbox == []


def test_a_start_reply_after_erasure_lifts_the_hashed_opt_out(histories, client):
    call_command("erase_person", phone=PERSON["phone"])
    reply(client, PERSON, "START", "SM9" + "0" * 31)
    assert not Suppression.objects.filter(channel="sms", address_hash=suppression_hash(PERSON["phone"])).exists()


def test_a_dry_run_counts_and_changes_nothing(histories, capsys):
    before = snapshot()
    call_command("erase_person", phone=PERSON["phone"], dry_run=True)
    assert snapshot() == before
    output = capsys.readouterr().out
    assert output.startswith("Dry run, nothing changed. Would erase:")
    assert "3  messages anonymised" in output and "1  contacts deleted" in output


def test_messages_not_sent_yet_are_cancelled_before_their_recipient_goes(api):
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()
    queued = api.post(
        "/api/v1/messages/",
        {"channel": "sms", "to": PERSON["phone"], "body": "Later", "send_at": tomorrow},
        format="json",
    ).json()
    call_command("erase_person", phone=PERSON["phone"])
    message = Message.objects.get(pk=queued["id"])
    assert (message.status, message.recipient, message.body) == (Status.CANCELLED, ERASED, "")


def test_bad_input_is_one_readable_line_and_a_non_zero_exit():
    result = run_manage("erase_person", "--phone", "12", DJANGO_SETTINGS_MODULE="messaging_project.settings.test")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: '12' is not a phone number. Use E.164 format with the country code, like +14155550100. "
        "Nothing was erased."
    ]


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"email": "not-an-address"}, "'not-an-address' is not a valid email address. Nothing was erased."),
        ({}, "one of the arguments --phone --email is required"),
        ({"phone": PERSON["phone"], "email": PERSON["email"]}, "argument --email: not allowed with argument --phone"),
    ],
)
def test_an_unusable_address_or_none_or_two_are_refused(options, said):
    with pytest.raises(CommandError, match=said):
        call_command("erase_person", **options)


def test_the_admin_action_confirms_with_counts_then_erases_for_a_superuser(histories):
    person, _ = histories
    admin = Client()
    admin.force_login(User.objects.get(username="root"))
    url = "/admin/campaigns/contact/"

    page = admin.post(url, {"action": "erase_contacts", "_selected_action": [person.pk]})
    assert page.status_code == 200
    assert "Yes, erase 1 person" in page.content.decode()
    assert Contact.objects.filter(pk=person.pk).exists()  # the confirmation page changes nothing

    done = admin.post(url, {"action": "erase_contacts", "_selected_action": [person.pk], "confirmed": "yes"})
    assert done.status_code == 302
    assert not Contact.objects.filter(pk=person.pk).exists()
    entry = AuditEntry.objects.get(action=AuditEntry.Action.PERSON_ERASED)
    assert entry.user.username == "root"
    assert rows_quoting(quotes_of(PERSON)) == []


def test_operators_are_not_offered_the_erasure_and_cannot_post_it(histories):
    person, _ = histories
    staff_roles_ensure()  # the groups come from a migration, and this test's database was flushed
    operator = User.objects.create_user("op", password="pw", is_staff=True)
    operator.groups.add(Group.objects.get(name=OPERATORS))
    client = Client()
    client.force_login(operator)
    url = "/admin/campaigns/contact/"

    assert "erase_contacts" not in client.get(url).content.decode()
    client.post(url, {"action": "erase_contacts", "_selected_action": [person.pk], "confirmed": "yes"})
    assert Contact.objects.filter(pk=person.pk).exists()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.PERSON_ERASED).exists()


def test_a_message_being_sent_is_left_for_a_second_run_that_the_command_asks_for():
    sending = MessageFactory(recipient=PERSON["phone"], status=Status.SENDING, body="Your code")
    with pytest.raises(CommandError, match="1 message\\(s\\) to them are being sent right now"):
        call_command("erase_person", phone=PERSON["phone"])
    assert Message.objects.get(pk=sending.pk).recipient == PERSON["phone"]

    Message.objects.filter(pk=sending.pk).update(status=Status.SENT)  # the worker wrote what the provider said
    call_command("erase_person", phone=PERSON["phone"])
    assert Message.objects.get(pk=sending.pk).recipient == ERASED
    assert rows_quoting(quotes_of(PERSON)) == []


def test_a_late_report_on_an_erased_message_is_counted_but_keeps_no_payload(histories, client, settings):
    email = Message.objects.get(recipient__iexact=PERSON["email"])
    call_command("erase_person", email=PERSON["email"])
    email_tracking(client, settings, PERSON, message=email)  # the ESP reports on it once more, link and all
    assert rows_quoting(quotes_of(PERSON)) == []
    assert Message.objects.get(pk=email.pk).clicks_count == 2


def test_a_message_a_worker_claims_after_it_was_listed_is_not_blanked_and_counts_as_in_flight():
    """The race: listed while queued, claimed (`sending`) before the blanking; the worker holds its address."""
    claimed = MessageFactory(recipient=PERSON["phone"], status=Status.SENDING, body="Your code")
    finished = MessageFactory(recipient=PERSON["phone"], status=Status.SENT, body="Your code")

    with transaction.atomic():  # as recipient_data_erase runs it: the rows it blanks are locked first
        blanked = _blank_messages([claimed.pk, finished.pk], PersonQuotes([PERSON["phone"]]))

    assert blanked == [finished.pk]
    assert Message.objects.get(pk=claimed.pk).recipient == PERSON["phone"]
    assert Message.objects.get(pk=finished.pk).recipient == ERASED


def test_their_messages_lose_their_dedupe_keys_which_may_be_made_of_who_they_are():
    keys = [f"welcome-{PERSON['phone']}", "promo-Zebulon-2026", "order-4242"]
    theirs = [MessageFactory(recipient=PERSON["phone"], status=Status.SENT, dedupe_key=key) for key in keys]
    someone_elses = MessageFactory(recipient=BYSTANDER["phone"], status=Status.SENT, dedupe_key="order-4243")

    call_command("erase_person", phone=PERSON["phone"])

    assert (
        list(Message.objects.filter(pk__in=[m.pk for m in theirs]).values_list("dedupe_key", flat=True)) == [None] * 3
    )
    assert Message.objects.get(pk=someone_elses.pk).dedupe_key == "order-4243"
    assert rows_quoting(quotes_of(PERSON)) == []


def test_the_admin_action_erases_a_contact_with_an_unusable_phone_by_its_email_and_names_the_one_it_cannot():
    good_email = Contact.objects.create(name=PERSON["name"], phone="12", email=PERSON["email"].lower())
    hopeless = Contact.objects.create(name="Nobody Usable", phone="34")
    MessageFactory(channel="email", recipient=PERSON["email"].lower(), status=Status.SENT)
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@tidings.test", "pw"))
    url = "/admin/campaigns/contact/"
    selected = [good_email.pk, hopeless.pk]

    page = admin.post(url, {"action": "erase_contacts", "_selected_action": selected})
    assert page.status_code == 200
    content = page.content.decode()
    assert "Cannot be erased: &#x27;34&#x27; is not a phone number." in content
    assert "Yes, erase 1 person" in content

    done = admin.post(url, {"action": "erase_contacts", "_selected_action": selected, "confirmed": "yes"}, follow=True)
    assert not Contact.objects.filter(pk=good_email.pk).exists()
    assert Contact.objects.filter(pk=hopeless.pk).exists()
    assert f"Contact #{hopeless.pk} not erased" in done.content.decode()
    assert rows_quoting(quotes_of(PERSON)) == []
