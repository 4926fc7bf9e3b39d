"""A campaign's cost: estimated before launch (segments × price by country), what it has spent as it runs, and the
spend cap that refuses a launch whose estimate passes it (issue #24, "Cost" and "Caps")."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.utils.html import escape

from campaigns.models import Campaign, Contact
from campaigns.services.campaign_cost import campaign_cost_estimate
from campaigns.services.campaign_lifecycle import campaign_launch
from content.services.sms_segments import sms_segments
from deliveries.models import Message, Status
from guard.models import Price
from tests.factories import ContactListFactory, TemplateFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/campaigns/campaign/"
# "Hello <first name>! " and 140 more characters: 151 GSM-7 characters (one segment) for a name in GSM-7, 153 or
# 154 UCS-2 characters (three segments of 67) for a name with a character GSM-7 lacks (Ł).
BODY = "Hello {{ first_name }}! " + "a" * 140
# (name, phone, segments): three in GB, two in the US, two in France.
AUDIENCE = [
    ("Ada Lovelace", "+447400123401", 1),
    ("Bob", "+447400123402", 1),
    ("Łukasz", "+447400123403", 3),
    ("Ada", "+14155550101", 1),
    ("Łucja", "+14155550102", 3),
    ("Zoé", "+33612345601", 1),
    ("Łukasz Nowak", "+33612345602", 3),
]
PRICES = {"GB": Decimal("0.040000"), "US": Decimal("0.007900"), "FR": Decimal("0.065000")}


@pytest.fixture
def prices():
    for country, price in PRICES.items():
        Price.objects.create(channel="sms", country=country, price=price, currency="USD")


def campaign_to(audience, *, extra=(), **fields) -> Campaign:
    contact_list = ContactListFactory()
    for name, phone, _segments in [*audience, *extra]:
        Contact.objects.create(name=name, phone=phone, sms_consent=True).lists.add(contact_list)
    # Left out: no consent, so neither counted nor priced.
    Contact.objects.create(name="No", phone="+447400123499").lists.add(contact_list)
    template = TemplateFactory(body=BODY, variables={"first_name": None})
    return Campaign.objects.create(name="Spring sale", template=template, contact_list=contact_list, **fields)


def expected_rows():
    rows = {}
    for _name, phone, segments in AUDIENCE:
        country = {"+44": "GB", "+1": "US", "+33": "FR"}[next(p for p in ("+44", "+1", "+33") if phone.startswith(p))]
        recipients, units = rows.get(country, (0, 0))
        rows[country] = (recipients + 1, units + segments)
    return rows


def test_the_segments_the_table_assumes_are_what_the_carriers_count():
    for name, _phone, segments in AUDIENCE:
        first = name.split()[0]
        counted = sms_segments(f"Hello {first}! " + "a" * 140)
        assert (counted.segments, counted.encoding) == (segments, "GSM-7" if segments == 1 else "UCS-2")


def test_the_estimate_is_segments_times_price_for_gsm7_and_ucs2_texts_in_three_countries(prices):
    campaign = campaign_to(AUDIENCE, extra=[("Brazil", "+5511987654321", 1)])
    estimate = campaign_cost_estimate(campaign=campaign)

    got = {row.country: (row.recipients, row.segments, row.unit_price, row.cost) for row in estimate.by_country}
    assert got == {
        "FR": (2, 4, Decimal("0.065000"), Decimal("0.260000")),
        "GB": (3, 5, Decimal("0.040000"), Decimal("0.200000")),
        "US": (2, 4, Decimal("0.007900"), Decimal("0.031600")),
    }
    assert {country: row[:2] for country, row in got.items()} == expected_rows()
    assert (estimate.total, estimate.currency) == (Decimal("0.491600"), "USD")
    # Brazil has no price: counted apart, never as costing nothing.
    assert (estimate.recipients, estimate.unpriced_recipients, estimate.unpriced_countries) == (8, 1, ["BR"])


def test_the_estimate_matches_the_messages_the_launch_creates_and_the_spend_follows_the_sends(prices, api):
    campaign = campaign_to(AUDIENCE)
    campaign_launch(campaign=campaign)
    run_burst_worker("high")  # the fan-out: each message stores its own estimate
    stored = Message.objects.filter(campaign=campaign).values_list("estimated_cost", flat=True)
    assert sum(stored) == campaign_cost_estimate(campaign=campaign).total == Decimal("0.4916")

    before = api.get(f"/api/v1/campaigns/{campaign.pk}/").json()
    assert before["spent"] == {"total": "0.000000", "currency": "", "messages": 0, "unpriced_messages": 0}
    # Once launched, the estimate shown is the one made at launch.
    assert before["estimated_cost"]["total"] == "0.491600"
    run_burst_worker()
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    after = api.get(f"/api/v1/campaigns/{campaign.pk}/").json()
    assert after["spent"] == {"total": "0.491600", "currency": "USD", "messages": 7, "unpriced_messages": 0}
    # The provider's price replaces the estimate once reported (in the same currency; another one is not mixed in).
    first, second = Message.objects.filter(campaign=campaign).order_by("pk")[:2]
    Message.objects.filter(pk=first.pk).update(
        actual_cost=first.estimated_cost + Decimal("0.1"), actual_cost_currency="USD"
    )
    Message.objects.filter(pk=second.pk).update(actual_cost=Decimal("5"), actual_cost_currency="EUR")
    reported = api.get(f"/api/v1/campaigns/{campaign.pk}/").json()
    assert reported["spent"]["total"] == "0.591600"


def test_the_api_gives_the_estimate_by_country_on_a_campaign_and_leaves_it_out_of_the_list(prices, api):
    campaign = campaign_to(AUDIENCE, extra=[("Brazil", "+5511987654321", 1)])
    detail = api.get(f"/api/v1/campaigns/{campaign.pk}/").json()
    assert detail["estimated_cost"] == {
        "total": "0.491600",
        "currency": "USD",
        "by_country": [
            {
                "country": "FR",
                "recipients": 2,
                "segments": 4,
                "unit_price": "0.065000",
                "currency": "USD",
                "cost": "0.260000",
            },
            {
                "country": "GB",
                "recipients": 3,
                "segments": 5,
                "unit_price": "0.040000",
                "currency": "USD",
                "cost": "0.200000",
            },
            {
                "country": "US",
                "recipients": 2,
                "segments": 4,
                "unit_price": "0.007900",
                "currency": "USD",
                "cost": "0.031600",
            },
        ],
        "recipients": 8,
        "unpriced_recipients": 1,
        "unpriced_countries": ["BR"],
        "unrenderable_recipients": 0,
    }
    listed = api.get("/api/v1/campaigns/").json()["results"][0]
    assert listed["id"] == campaign.pk
    assert "estimated_cost" not in listed and "spent" not in listed


def test_a_campaign_whose_estimate_passes_its_cap_is_refused_by_the_api_with_the_figures(prices, api):
    campaign = campaign_to(AUDIENCE)
    url = f"/api/v1/campaigns/{campaign.pk}/"
    assert api.patch(url, {"spend_cap": "-1"}, format="json").status_code == 400
    capped = api.patch(url, {"spend_cap": "0.40"}, format="json")
    assert capped.json()["spend_cap"] == "0.40"
    message = "The estimate 0.50 USD passes this campaign's cap of 0.40 USD (7 recipients in 3 countries)."
    assert capped.json()["launch_problems"] == {"spend_cap": [message]}

    refused = api.post(url + "launch/")
    assert (refused.status_code, refused.json()) == (400, {"spend_cap": [message]})
    campaign.refresh_from_db()
    assert (campaign.status, Message.objects.count()) == (Campaign.Status.DRAFT, 0)

    api.patch(url, {"spend_cap": "0.50"}, format="json")  # 0.4916 is within it
    assert api.post(url + "launch/").json()["status"] == "running"


def test_a_cap_cannot_be_checked_for_recipients_without_a_price(prices, api):
    campaign = campaign_to(AUDIENCE, extra=[("Brazil", "+5511987654321", 1)], spend_cap=Decimal("100"))
    refused = api.post(f"/api/v1/campaigns/{campaign.pk}/launch/")
    assert refused.status_code == 400
    assert refused.json() == {
        "spend_cap": [
            "1 recipient (BR) has no price, so the cost cannot be checked against this campaign's cap of "
            "100.00 USD: add their prices to the price list, or remove the cap."
        ]
    }
    # Without a cap the same campaign launches: the unknown part is shown, not refused.
    api.patch(f"/api/v1/campaigns/{campaign.pk}/", {"spend_cap": None}, format="json")
    assert api.post(f"/api/v1/campaigns/{campaign.pk}/launch/").status_code == 200


@pytest.fixture
def launcher(client):
    user = User.objects.create_user("marketer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_campaign", "change_campaign", "launch_campaign", "view_message"])
    )
    client.force_login(user)
    return user


def test_the_admin_page_shows_the_estimate_by_country_and_the_total(prices, client, launcher):
    campaign = campaign_to(AUDIENCE, extra=[("Brazil", "+5511987654321", 1)])
    page = client.get(f"{CHANGELIST}{campaign.pk}/change/").content.decode()
    assert 'If launched now: <strong data-cost="total">0.491600 USD</strong>' in page
    assert (
        '<tr data-country="GB"><td>GB</td><td>3</td><td>5</td><td>0.040000 USD</td><td>0.200000 USD</td></tr>' in page
    )
    assert "<tfoot><tr><th>Total</th><th>7</th><th>13</th><th></th><th>0.491600 USD</th></tr></tfoot>" in page
    assert "1 recipient without a price (BR): not in the total." in page
    assert 'name="spend_cap"' in page  # editable on a draft
    confirmation = client.get(f"{CHANGELIST}{campaign.pk}/launch/").content.decode()
    assert 'data-cost="total">0.491600 USD</strong>' in confirmation


def test_the_admin_refuses_a_launch_past_the_cap_with_the_same_figures(prices, client, launcher):
    campaign = campaign_to(AUDIENCE, spend_cap=Decimal("0.40"))
    message = escape("The estimate 0.50 USD passes this campaign's cap of 0.40 USD (7 recipients in 3 countries).")
    assert message in client.get(f"{CHANGELIST}{campaign.pk}/change/").content.decode()
    assert message in client.get(f"{CHANGELIST}{campaign.pk}/launch/").content.decode()
    page = client.post(f"{CHANGELIST}{campaign.pk}/launch/", follow=True).content.decode()
    assert f"Not launched: Spring sale: {message}" in page
    listed = client.post(CHANGELIST, {"action": "launch_selected", "_selected_action": [campaign.pk]}, follow=True)
    assert f"Not launched: Spring sale: {message}" in listed.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT

    change = client.get(f"{CHANGELIST}{campaign.pk}/change/")
    form = {key: value for key, value in change.context["adminform"].form.initial.items() if value is not None}
    form.update({"name": campaign.name, "spend_cap": "0.50", "steps-TOTAL_FORMS": 0, "steps-INITIAL_FORMS": 0})
    saved = client.post(f"{CHANGELIST}{campaign.pk}/change/", form)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.spend_cap == Decimal("0.50")
    client.post(f"{CHANGELIST}{campaign.pk}/launch/")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_a_running_campaigns_page_shows_what_it_has_spent(prices, client, launcher):
    campaign = campaign_to(AUDIENCE)
    campaign_launch(campaign=campaign)
    run_burst_worker()
    page = client.get(f"{CHANGELIST}{campaign.pk}/change/").content.decode()
    assert "Spent so far: <strong>0.491600 USD</strong> for 7 sent messages" in page
    assert 'Estimated at launch: <strong data-cost="total">0.491600 USD</strong>' in page


def test_a_text_without_variables_is_counted_once_and_email_is_priced_per_message(api):
    Price.objects.create(channel="email", country="", price=Decimal("0.001000"), currency="EUR")
    contact_list = ContactListFactory()
    for i in range(3):
        Contact.objects.create(email=f"p{i}@example.com", email_consent=True).lists.add(contact_list)
    template = TemplateFactory(channel="email", subject="News", body="Hello", variables={})
    campaign = Campaign.objects.create(name="News", template=template, contact_list=contact_list)
    estimate = campaign_cost_estimate(campaign=campaign).as_json()
    assert (estimate["total"], estimate["currency"]) == ("0.003000", "EUR")
    assert estimate["by_country"] == [
        {"country": "", "recipients": 3, "segments": 3, "unit_price": "0.001000", "currency": "EUR", "cost": "0.003000"}
    ]


def test_countries_that_share_a_calling_code_are_told_apart(api):
    Price.objects.create(channel="sms", country="US", price=Decimal("0.0079"), currency="USD")
    Price.objects.create(channel="sms", country="CA", price=Decimal("0.0075"), currency="USD")
    Price.objects.create(channel="sms", country="JE", price=Decimal("0.0500"), currency="USD")
    contact_list = ContactListFactory()
    # San Francisco and Toronto both dial +1; Jersey's mobiles are +44 7797 …, beside Great Britain's (no price).
    for phone in ("+14155550101", "+14155550102", "+14165550123", "+447797123456", "+447400123401"):
        Contact.objects.create(phone=phone, sms_consent=True).lists.add(contact_list)
    campaign = Campaign.objects.create(
        name="North America", template=TemplateFactory(body="Hi", variables={}), contact_list=contact_list
    )
    estimate = campaign_cost_estimate(campaign=campaign)
    assert [(row.country, row.recipients, row.cost) for row in estimate.by_country] == [
        ("CA", 1, Decimal("0.0075")),
        ("JE", 1, Decimal("0.0500")),
        ("US", 2, Decimal("0.0158")),
    ]
    assert (estimate.unpriced_recipients, estimate.unpriced_countries) == (1, ["GB"])
