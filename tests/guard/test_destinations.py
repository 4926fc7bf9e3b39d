"""Destination allowlists (issue #24, "Fraud"): SMS_ALLOWED_COUNTRIES, WHATSAPP_ALLOWED_COUNTRIES, an API key's
own list narrowing them, and the check that refuses an unknown code (tidings.E070)."""

from decimal import Decimal

import pytest

from deliveries.services.messages import message_fields, message_request_validate
from guard.checks import check_allowed_countries
from guard.models import Price
from guard.services.countries import phone_country
from guard.services.destinations import (
    UNKNOWN_COUNTRY,
    destination_refusal,
    destination_refused,
    key_countries_validate,
)

BR = "+5511987654321"
GB = "+447400123456"
US = "+14155550100"
SATELLITE = "+881612345678"  # +881: a global satellite network, no country (where pumping likes to go)


@pytest.fixture
def sms_gb_us(settings):
    settings.SMS_ALLOWED_COUNTRIES = ["GB", "US"]


def test_without_lists_every_country_is_allowed_and_no_number_is_parsed():
    phone_country.cache_clear()
    for number in (BR, GB, SATELLITE):
        assert destination_refusal(channel="sms", recipient=number) is None
        assert destination_refusal(channel="whatsapp", recipient=f"whatsapp:{number}") is None
    assert phone_country.cache_info().currsize == 0  # the hot path paid nothing for a control it does not use


def test_a_country_outside_the_sms_list_is_refused_naming_it_and_the_list(sms_gb_us):
    assert destination_refusal(channel="sms", recipient=BR) == (
        "Sending sms to BR is not allowed (SMS_ALLOWED_COUNTRIES: GB, US)."
    )
    assert destination_refusal(channel="sms", recipient=GB) is None
    assert destination_refusal(channel="sms", recipient=US) is None


def test_a_number_whose_country_cannot_be_told_is_refused_when_a_list_is_set(sms_gb_us):
    refused = destination_refused(channel="sms", recipient=SATELLITE)
    assert refused is not None and refused.country == UNKNOWN_COUNTRY
    assert refused.reason == (
        f"Sending sms to {SATELLITE} is not allowed: its country cannot be told from the number, and only listed "
        "countries are (SMS_ALLOWED_COUNTRIES: GB, US)."
    )


def test_each_channel_has_its_own_list_and_email_and_messenger_are_never_checked(settings, sms_gb_us):
    settings.WHATSAPP_ALLOWED_COUNTRIES = ["BR"]
    assert destination_refusal(channel="whatsapp", recipient=f"whatsapp:{BR}") is None
    assert destination_refusal(channel="whatsapp", recipient=GB) == (
        "Sending whatsapp to GB is not allowed (WHATSAPP_ALLOWED_COUNTRIES: BR)."
    )
    assert destination_refusal(channel="email", recipient="ada@example.com", key_countries=["GB"]) is None
    assert destination_refusal(channel="messenger", recipient="1234567890", key_countries=["GB"]) is None


def test_a_keys_list_narrows_the_global_one_and_never_widens_it(settings, sms_gb_us):
    assert destination_refusal(channel="sms", recipient=US, key_countries=["GB"]) == (
        "Sending sms to US is not allowed (this API key's countries: GB)."
    )
    assert destination_refusal(channel="sms", recipient=GB, key_countries=["GB"]) is None
    # A key naming a country the global list leaves out (saved before the global list changed) still cannot reach it.
    assert destination_refusal(channel="sms", recipient=BR, key_countries=["GB", "BR"]) == (
        "Sending sms to BR is not allowed (SMS_ALLOWED_COUNTRIES: GB, US)."
    )
    settings.SMS_ALLOWED_COUNTRIES = []
    assert destination_refusal(channel="sms", recipient=BR, key_countries=["GB"]) == (
        "Sending sms to BR is not allowed (this API key's countries: GB)."
    )


def test_a_keys_list_is_refused_when_it_names_an_unknown_code_or_one_outside_a_global_list(settings, sms_gb_us):
    assert key_countries_validate([" gb", "US", "GB", ""]) == ["GB", "US"]
    with pytest.raises(ValueError, match=r"^UK is not an ISO 3166-1 alpha-2 code .* \(the United Kingdom is GB\)\.$"):
        key_countries_validate(["UK"])
    with pytest.raises(ValueError, match=r"^BR is not in SMS_ALLOWED_COUNTRIES \(GB, US\): a key's countries can only"):
        key_countries_validate(["GB", "BR"])
    settings.SMS_ALLOWED_COUNTRIES = []
    assert key_countries_validate(["BR"]) == ["BR"]


def test_the_check_refuses_an_unknown_code_in_either_list(settings):
    assert check_allowed_countries() == []
    settings.SMS_ALLOWED_COUNTRIES = ["GB", "UK", "ZZ"]
    settings.WHATSAPP_ALLOWED_COUNTRIES = ["BR"]
    errors = check_allowed_countries()
    assert [(error.id, error.msg) for error in errors] == [
        (
            "tidings.E070",
            "SMS_ALLOWED_COUNTRIES: UK, ZZ are not ISO 3166-1 alpha-2 codes of a country with phone numbers "
            "(the United Kingdom is GB).",
        )
    ]
    assert "SMS_ALLOWED_COUNTRIES=GB,US" in errors[0].hint


@pytest.mark.django_db
def test_a_message_with_a_list_and_a_price_list_parses_its_number_once(sms_gb_us):
    Price.objects.create(channel="sms", country="GB", price=Decimal("0.04"), currency="USD")
    phone_country.cache_clear()
    request, content = message_request_validate(channel="sms", to=GB, body="hi")
    assert destination_refusal(channel="sms", recipient=request.recipient, key_countries=["GB"]) is None
    assert message_fields(request, content)["estimated_cost"] == Decimal("0.04")
    info = phone_country.cache_info()
    assert (info.misses, info.hits) == (1, 2)  # the list, the key's list and the estimate share one parse
