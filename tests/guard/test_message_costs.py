"""Every new message stores its estimate (`estimated_cost`, `cost_currency`), shown by the API (issue #24, "Cost")."""

from decimal import Decimal

import pytest

from deliveries.models import Message
from deliveries.services.bulk import messages_create_many
from deliveries.services.messages import message_request_validate
from guard.models import Price

pytestmark = pytest.mark.django_db(transaction=True)

UCS2_80 = "ą" * 80  # two UCS-2 segments


@pytest.fixture
def prices():
    Price.objects.create(channel="sms", country="GB", price=Decimal("0.0400"), currency="USD")
    Price.objects.create(channel="sms", country="US", price=Decimal("0.0079"), currency="USD")
    Price.objects.create(channel="email", country="", price=Decimal("0.0010"), currency="EUR")


def test_the_api_answers_and_stores_each_messages_estimate_as_a_decimal_string(api, prices):
    gb = api.post("/api/v1/messages/", {"channel": "sms", "to": "+447400123456", "body": UCS2_80}, format="json")
    assert gb.status_code == 201, gb.content
    assert (gb.json()["estimated_cost"], gb.json()["cost_currency"]) == ("0.080000", "USD")
    email = api.post(
        "/api/v1/messages/",
        {"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"},
        format="json",
    )
    assert (email.json()["estimated_cost"], email.json()["cost_currency"]) == ("0.001000", "EUR")
    brazil = api.post("/api/v1/messages/", {"channel": "sms", "to": "+5511987654321", "body": "hi"}, format="json")
    assert (brazil.json()["estimated_cost"], brazil.json()["cost_currency"]) == (None, "")
    stored = Message.objects.get(pk=gb.json()["id"])
    assert (stored.estimated_cost, stored.cost_currency) == (Decimal("0.08"), "USD")
    assert api.get(f"/api/v1/messages/{gb.json()['id']}/").json()["estimated_cost"] == "0.080000"


def test_messages_stored_many_at_once_carry_their_estimates_too(prices):
    # The bulk path (send_bulk, batches, campaign fan-out) stores rows by COPY on PostgreSQL.
    requests = [
        message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body="x" * (150 + i)) for i in range(20)
    ]
    messages_create_many(items=iter(requests), chunk_size=7)
    costs = sorted(Message.objects.values_list("estimated_cost", flat=True))
    # 150..160 characters are one GSM-7 segment, 161..169 two.
    assert costs == [Decimal("0.0079")] * 11 + [Decimal("0.0158")] * 9


def test_without_a_price_list_messages_have_no_estimate(api):
    response = api.post("/api/v1/messages/", {"channel": "sms", "to": "+447400123456", "body": "hi"}, format="json")
    assert (response.json()["estimated_cost"], response.json()["cost_currency"]) == (None, "")


def test_the_message_page_shows_the_estimate(admin_client, prices):
    message = Message.objects.create(
        channel="sms", recipient="+447400123456", body="hi", estimated_cost=Decimal("0.04"), cost_currency="USD"
    )
    page = admin_client.get(f"/admin/deliveries/message/{message.pk}/change/").content.decode()
    assert "estimated cost" in page.lower() and "0.040000 USD" in page
