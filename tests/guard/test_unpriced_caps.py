"""A message a spend cap covers but cannot count: a destination without a price is held for a person (`held:unpriced`),
never let through uncounted, since that is where pumping sends; a channel priced nowhere is said on the caps' page.
Through the real worker and the real Redis."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from console.services.alert_rules import messages_held
from deliveries.models import Message, Status
from deliveries.services.holds import held_messages_release
from guard.models import Price, SpendCap
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gb_price():
    """SMS priced for Great Britain only: every other country has no price."""
    Price.objects.create(channel="sms", country="GB", price=Decimal("0.0400"), currency="USD")


def cap(scope: str = "channel", scope_value: str = "sms", amount: str = "100") -> SpendCap:
    return SpendCap.objects.create(
        scope=scope, scope_value=scope_value, period="day", amount=Decimal(amount), currency="USD"
    )


def post(api, channel: str, to: str, **fields) -> int:
    response = api.post("/api/v1/messages/", {"channel": channel, "to": to, "body": "Your code is 1234", **fields})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_an_sms_to_a_country_without_a_price_is_held_under_a_cap_with_the_country_and_what_to_do(
    api, gb_price, sms_outbox
):
    cap()
    priced = post(api, "sms", "+447400123456")
    unpriced = post(api, "sms", "+2250701234567")  # Côte d'Ivoire: no row, no catch-all

    run_burst_worker()

    assert [sent.recipient for sent in sms_outbox] == ["+447400123456"]
    held = Message.objects.get(pk=unpriced)
    assert (held.status, held.estimated_cost, held.last_error_code) == (Status.HELD, None, "held:unpriced")
    assert held.last_error_message == (
        "Held: SMS to CI has no price, so the daily sms cap cannot count it. Add a price for CI, or the channel's "
        "catch-all (a blank country), under Cost guard → Prices, then release it."
    )
    assert held.events.filter(to_status=Status.HELD, code="held:unpriced").count() == 1
    assert Message.objects.get(pk=priced).status == Status.SENT
    [finding] = messages_held(timezone.now())
    assert (finding.firing, finding.detail) == (True, "1 message(s) held: 1 held:unpriced")


def test_a_released_unpriced_message_goes_out_once_and_is_not_held_again(api, gb_price, sms_outbox):
    cap()
    unpriced = post(api, "sms", "+2250701234567")
    run_burst_worker()
    assert Message.objects.get(pk=unpriced).status == Status.HELD

    assert held_messages_release(message_ids=[unpriced], by="ops") == [unpriced]
    run_burst_worker()
    run_burst_worker()

    released = Message.objects.get(pk=unpriced)
    assert (released.status, released.guard_released) == (Status.SENT, True)
    assert [sent.recipient for sent in sms_outbox] == ["+2250701234567"]


def test_a_key_cap_holds_its_unpriced_messages_and_without_a_cap_nothing_is_held(api, api_key, gb_price, sms_outbox):
    first = post(api, "sms", "+2250701234567")
    run_burst_worker()
    assert Message.objects.get(pk=first).status == Status.SENT  # no cap: the price list alone holds nothing

    cap(scope="api_key", scope_value=str(api_key.pk))
    second = post(api, "sms", "+2250701234568")
    run_burst_worker()
    assert Message.objects.get(pk=second).last_error_code == "held:unpriced"


def test_a_catch_all_price_prices_every_country_and_nothing_is_held(api, gb_price, sms_outbox):
    Price.objects.create(channel="sms", country="", price=Decimal("0.0900"), currency="USD")
    cap()
    pk = post(api, "sms", "+2250701234567")
    run_burst_worker()
    message = Message.objects.get(pk=pk)
    assert (message.status, message.estimated_cost) == (Status.SENT, Decimal("0.09"))


def test_a_channel_priced_nowhere_is_sent_and_the_caps_page_says_no_cap_counts_it(
    admin_client, api, gb_price, sms_outbox, mailoutbox
):
    cap(scope="all")
    pk = post(api, "email", "someone@example.com", subject="Hello")
    run_burst_worker()
    assert Message.objects.get(pk=pk).status == Status.SENT

    page = admin_client.get("/admin/guard/spendcap/")
    shown = [str(message) for message in get_messages(page.wsgi_request)]
    assert shown == [
        "No price for Email, WhatsApp, Messenger: no cap counts their messages. Add a price under Prices (a row with "
        "a blank country prices every destination)."
    ]


def test_a_destination_priced_after_the_message_was_made_is_not_held_for_want_of_a_price(api, gb_price, sms_outbox):
    pk = post(api, "sms", "+2250701234567")  # no price for CI when it is made
    Price.objects.create(channel="sms", country="CI", price=Decimal("0.1000"), currency="USD")
    cap()
    run_burst_worker()
    assert Message.objects.get(pk=pk).status == Status.SENT  # priced now: not what the hold guards against


def test_released_after_its_price_was_added_a_message_is_estimated_again_and_counted_by_the_cap(
    api, gb_price, sms_outbox
):
    cap(amount="0.15")
    first, second = post(api, "sms", "+2250701234567"), post(api, "sms", "+2250701234568")
    run_burst_worker()
    Price.objects.create(channel="sms", country="CI", price=Decimal("0.1000"), currency="USD")

    held_messages_release(message_ids=[first, second], by="ops")
    run_burst_worker()

    sent, over = Message.objects.get(pk=first), Message.objects.get(pk=second)
    assert (sent.status, sent.estimated_cost, sent.guard_released) == (Status.SENT, Decimal("0.1"), False)
    # Counted: the second's 0.10 would take the 0.15 cap past its amount, so the cap holds it this time.
    assert (over.status, over.last_error_code) == (Status.HELD, "held:cap")
    assert [message.recipient for message in sms_outbox] == ["+2250701234567"]
