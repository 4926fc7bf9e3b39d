"""Estimates from the price list: segments × the destination country's price (issue #24, "Cost")."""

from decimal import Decimal

import pytest

from content.services.sms_segments import sms_segments
from guard.models import Price
from guard.services.pricing import cost_estimate, destination_country

pytestmark = pytest.mark.django_db

US, GB, IN = "+14155550100", "+447700900123", "+919876543210"
GSM7_200 = "Your parcel is on its way. " * 7 + "Track it online."  # 205 characters, all GSM-7
UCS2_90 = "Zażółć gęślą jaźń. " * 4 + "Dzięki!"  # 83 characters, Polish letters outside GSM-7


@pytest.fixture
def prices():
    Price.objects.create(channel="sms", country="US", price=Decimal("0.0079"), currency="USD")
    Price.objects.create(channel="sms", country="GB", price=Decimal("0.0400"), currency="USD")
    Price.objects.create(channel="sms", country="IN", price=Decimal("0.0052"), currency="USD")
    Price.objects.create(channel="whatsapp", country="GB", price=Decimal("0.0360"), currency="USD")
    Price.objects.create(channel="email", country="", price=Decimal("0.0010"), currency="USD")


def test_the_texts_segment_the_way_the_estimates_assume():
    # The counts the estimates below multiply, checked against the GSM 03.38 / UCS-2 rules themselves.
    assert len(GSM7_200) == 205 and sms_segments(GSM7_200).encoding == "GSM-7"
    assert sms_segments(GSM7_200).segments == 2  # 153 septets per part of a long message
    assert sms_segments(UCS2_90).encoding == "UCS-2"
    assert sms_segments(UCS2_90).segments == 2  # 67 characters per part


@pytest.mark.parametrize(
    ("recipient", "country", "price"),
    [(US, "US", "0.0079"), (GB, "GB", "0.0400"), (IN, "IN", "0.0052")],
)
@pytest.mark.parametrize(("body", "segments"), [("Your code is 123456", 1), (GSM7_200, 2), (UCS2_90, 2)])
def test_an_sms_costs_its_segments_times_its_countrys_price(prices, recipient, country, price, body, segments):
    found = cost_estimate(channel="sms", recipient=recipient, body=body)
    assert found.country == country
    assert found.units == segments
    assert found.cost == Decimal(price) * segments
    assert found.currency == "USD"


def test_a_ucs2_text_costs_more_than_the_same_length_in_gsm7(prices):
    gsm = cost_estimate(channel="sms", recipient=GB, body="a" * 80)
    ucs = cost_estimate(channel="sms", recipient=GB, body="ą" * 80)
    assert (gsm.units, ucs.units) == (1, 2)
    assert ucs.cost == 2 * gsm.cost


def test_whatsapp_is_priced_per_message_by_country_and_email_at_its_unit_price(prices):
    assert cost_estimate(channel="whatsapp", recipient=f"whatsapp:{GB}", body=GSM7_200).cost == Decimal("0.0360")
    assert cost_estimate(channel="email", recipient="someone@example.com", body="x" * 5000).cost == Decimal("0.0010")


def test_a_country_without_a_price_falls_back_to_the_channels_any_country_price_else_has_none(prices):
    brazil = "+5511987654321"
    assert cost_estimate(channel="sms", recipient=brazil, body="hi").cost is None
    assert cost_estimate(channel="sms", recipient=brazil, body="hi").describe() == "no price to BR"
    Price.objects.create(channel="sms", country="", price=Decimal("0.05"), currency="EUR")
    found = cost_estimate(channel="sms", recipient=brazil, body="hi")
    assert (found.cost, found.currency, found.country) == (Decimal("0.05"), "EUR", "BR")
    assert cost_estimate(channel="messenger", recipient="1234567890", body="hi").cost is None


def test_a_price_saved_applies_at_once_in_this_process(prices):
    assert cost_estimate(channel="sms", recipient=US, body="hi").cost == Decimal("0.0079")
    Price.objects.filter(country="US").delete()
    assert cost_estimate(channel="sms", recipient=US, body="hi").cost is None
    Price.objects.create(channel="sms", country="US", price=Decimal("0.0100"), currency="USD")
    assert cost_estimate(channel="sms", recipient=US, body="hi").cost == Decimal("0.0100")


@pytest.mark.parametrize(
    ("channel", "recipient", "country"),
    [("sms", "+16135550123", "CA"), ("sms", "+12125550123", "US"), ("sms", "not a number", ""), ("email", GB, "")],
)
def test_the_destination_country_comes_from_the_number(channel, recipient, country):
    assert destination_country(channel, recipient) == country
