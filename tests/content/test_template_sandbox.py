"""Message templates run in a sandbox: allowed tags and filters only, bounded arguments, loops and output."""

import pytest
from django.contrib.auth.models import User
from django.utils.safestring import SafeString

from campaigns.models import Campaign
from campaigns.services.campaign_lifecycle import campaign_launch
from content.models import MessageTemplate
from content.services.templates import TemplateRenderError, render_string, template_create
from content.template_sandbox import MAX_LOOP_ITEMS
from content.template_syntax import render
from deliveries.models import Message, MessageEvent, Status
from tests.campaigns.campaign_support import new_campaign
from tests.campaigns.test_template_admin import ADD, form_data
from tests.factories import ContactFactory, ContactListFactory, TemplateFactory
from tests.support import run_burst_worker

# The template bombs of issue 20, each with the start of the reason it is refused with.
BOMBS = {
    '{{ name|ljust:"2000000000" }}': "Line 1: the filter 'ljust' is not allowed here. Allowed: add, capfirst,",
    '{{ name|rjust:"2000000000" }}': "Line 1: the filter 'rjust' is not allowed here.",
    '{{ name|center:"2000000000" }}': "Line 1: the filter 'center' is not allowed here.",
    "Hi\n{% lorem 999999 %}": "Line 2: the tag {% lorem %} is not allowed here. Allowed: comment, cycle,",
    "{% for a in items %}{% for b in items %}\n{% for c in items %}{{ name }}{% endfor %}{% endfor %}{% endfor %}": (
        "Line 2: loops may nest at most 2 deep."
    ),
    '{{ amount|floatformat:"2000000000" }}': "Line 1: the filter 'floatformat' takes at most 20 decimal places",
    "{{ name|truncatechars:99999 }}": "Line 1: the filter 'truncatechars' takes a length of at most 1,000",
    '{{ name|stringformat:"%999999999s" }}': "Line 1: the filter 'stringformat' is not allowed here.",
    "{{ items.clear }}": "Line 1: 'items.clear' would change the data ('clear'): templates only read it.",
    "{% if name %}" * 11 + "{{ name }}" + "{% endif %}" * 11: "Line 1: tags may nest at most 10 deep.",
    "{% if name %}" * 5000 + "{% endif %}" * 5000: "Line 1: tags are nested too deeply.",
}
VARIABLES = {"name": None, "items": None, "amount": None}


@pytest.mark.django_db
@pytest.mark.parametrize("body", BOMBS)
def test_each_template_bomb_is_refused_by_the_api_with_its_line_and_reason(api, body):
    response = api.post(
        "/api/v1/templates/",
        {"name": "Bomb", "slug": "bomb", "channel": "sms", "body": body, "variables": VARIABLES},
        format="json",
    )
    assert response.status_code == 400
    [message] = response.json()["body"]
    assert message.startswith(BOMBS[body])
    assert not MessageTemplate.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body", list(BOMBS)[:5])
def test_each_template_bomb_is_refused_by_the_admin_with_its_line_and_reason(client, body):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    response = client.post(ADD, form_data(body=body, variables='{"name": null, "items": null, "amount": null}'))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["body"][0].startswith(BOMBS[body])
    assert not MessageTemplate.objects.exists()


@pytest.mark.django_db
def test_what_messages_need_is_allowed():
    template = template_create(
        name="Order",
        slug="order",
        channel="email",
        subject="Your order {{ order.number|upper }}",
        body=(
            "{% with first=items|first %}Hi {{ name|default:'there'|title }},{% endwith %}\n"
            "{% for item in items %}{{ forloop.counter }}. {{ item.name|truncatechars:40 }} "
            "{{ item.price|floatformat:2 }}{% empty %}Nothing{% endfor %}\n"
            "{{ items|length }} item{{ items|length|pluralize }} · {{ vip|yesno:'VIP,regular' }} · {% now 'Y' %}"
        ),
        variables={"name": None, "order": None, "items": None, "vip": False},
    )
    rendered = render_string(
        template.body, {"name": "ada", "items": [{"name": "Tea", "price": 3.5}], "vip": True, "order": {}}
    )
    assert rendered.startswith("Hi Ada,\n1. Tea 3.50\n1 item · VIP · ")


def test_text_renders_are_plain_text_and_only_html_renders_are_marked_safe():
    hostile = {"name": "<img src=x onerror=alert(1)>"}
    for source in ("Hi {{ name }}", "Hi {{ name|upper }}"):  # the fast path and the engine's
        text = render(source, hostile)
        assert type(text) is str and "<img" in text.lower()
        html = render(source, hostile, html=True)
        assert isinstance(html, SafeString) and "&lt;" in html


def test_a_loop_over_too_many_items_fails_the_render_with_the_limit():
    with pytest.raises(TemplateRenderError) as raised:
        render_string("{% for x in items %}{{ x }}{% endfor %}", {"items": list(range(MAX_LOOP_ITEMS + 1))})
    assert raised.value.reason == "Could not render body: A loop over 1,001 items: a loop may go over at most 1,000."


def test_nested_loops_share_one_budget_of_items():
    source = "{% for a in items %}{% for b in items %}.{% endfor %}{% endfor %}"
    assert render_string(source, {"items": list(range(99))}) == "." * 99 * 99
    with pytest.raises(TemplateRenderError, match="more than 10,000 items in all"):
        render_string(source, {"items": list(range(1000))})


def test_loops_that_output_nothing_still_count_their_work():
    body = "{% if flag %}{% endif %}" * 20
    source = "{% for a in items %}{% for b in items %}" + body + "{% endfor %}{% endfor %}"
    assert render_string(source, {"items": list(range(20)), "flag": False}) == ""
    with pytest.raises(TemplateRenderError, match="did too much work: over 100,000 pieces rendered"):
        render_string(source, {"items": list(range(99)), "flag": False})


def test_a_render_that_would_output_too_much_stops_before_it_does():
    with pytest.raises(TemplateRenderError, match="over 1,000,000 characters"):
        render_string("{% for a in items %}{{ big }}{% endfor %}", {"items": list(range(100)), "big": "x" * 100_000})
    with pytest.raises(TemplateRenderError, match="The filter 'join' would output over 1,000,000 characters"):
        render_string("{{ items|join:separator }}", {"items": list(range(1000)), "separator": "-" * 10_000})


def test_a_numeric_argument_from_the_context_is_bounded_at_render():
    with pytest.raises(TemplateRenderError, match="'truncatechars' takes a length of at most 1,000"):
        render_string("{{ name|truncatechars:n }}", {"name": "Ada", "n": 2_000_000_000})


@pytest.mark.django_db
def test_a_message_whose_render_is_over_the_sms_limit_is_refused_at_creation_with_the_count(api):
    TemplateFactory(slug="news", body="News: {{ text }}", variables={"text": None})
    response = api.post(
        "/api/v1/messages/",
        {"channel": "sms", "to": "+14155550100", "template": "news", "context": {"text": "x" * 2000}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["template"] == [
        "The body is 2,006 characters (14 segments); an SMS takes at most 1,600 characters."
    ]
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_campaign_message_whose_render_goes_over_fails_with_the_reason_on_its_timeline(sms_outbox):
    audience = ContactListFactory()
    ContactFactory(lists=[audience], name="Ada", attributes={"note": "x" * 5_000_000})
    ContactFactory(lists=[audience], name="Bob", attributes={"note": "fine"})
    template = TemplateFactory(body="Hi {{ first_name }}: {{ note }}", variables={"first_name": None, "note": None})
    campaign = new_campaign(audience, template=template)
    campaign_launch(campaign=campaign)
    run_burst_worker()

    failed = Message.objects.get(campaign=campaign, status=Status.FAILED)
    assert failed.last_error_message == ("The body is 5,000,008 characters; an SMS takes at most 1,600 characters.")
    assert MessageEvent.objects.get(message=failed).detail.endswith(f"Not sent: {failed.last_error_message}")
    assert [m.body for m in sms_outbox] == ["Hi Bob: fine"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
