import pytest
from django.core.exceptions import ValidationError

from content.models import MessageTemplate
from content.services.templates import (
    TemplateRenderError,
    render_string,
    template_create,
    template_preview,
    template_render,
    template_translation_set,
    template_update,
)
from deliveries.services.messages import message_request_validate
from tests.factories import TemplateFactory

pytestmark = pytest.mark.django_db


def sms_template(**overrides):
    fields = {
        "name": "Welcome",
        "slug": "welcome",
        "channel": "sms",
        "body": "Hi {{ name }}",
        "variables": {"name": None},
    }
    return template_create(**{**fields, **overrides})


def errors_of(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


# --- Validation on save ---------------------------------------------------------------------------------------


def test_a_syntax_error_is_refused_with_its_line():
    with pytest.raises(ValidationError) as excinfo:
        sms_template(body="Hi {{ name }}\n{% if name %}\nwelcome {% endfi %}")
    [message] = errors_of(excinfo)["body"]
    assert message.startswith("Line 3: syntax error:")
    assert "endfi" in message
    assert not MessageTemplate.objects.exists()


def test_an_undeclared_variable_is_refused_with_its_line_and_name():
    with pytest.raises(ValidationError) as excinfo:
        sms_template(body="Hi {{ name }},\nyour code is {{ code }}.\nBye {{ nmae }}", variables={"name": None})
    advice = (
        "Declare it in the template's variables, or correct the name "
        "(name, first_name, phone, email, language, time_zone need no declaring)."
    )
    assert errors_of(excinfo)["body"] == [
        f"Line 2: 'code' is not a declared variable. {advice}",
        f"Line 3: 'nmae' is not a declared variable. {advice}",
    ]


def test_undeclared_variables_are_found_in_tags_filters_and_every_field():
    with pytest.raises(ValidationError) as excinfo:
        template_create(
            name="Receipt",
            slug="receipt",
            channel="email",
            subject="Order {{ order.number }}",
            html_body="{% if vip %}<b>VIP</b>{% endif %}\n<p>{{ total|floatformat:digits }}</p>",
            variables={"total": 0},
        )
    errors = errors_of(excinfo)
    assert errors["subject"][0].startswith(
        "Line 1: 'order' is not a declared variable. Declare it in the template's variables, or correct the name"
    )
    assert [m.split(" is not")[0] for m in errors["html_body"]] == ["Line 1: 'vip'", "Line 2: 'digits'"]


def test_names_the_template_binds_itself_need_no_declaration():
    template = sms_template(
        body="{% for item in items %}{{ forloop.counter }}. {{ item.name }}{% endfor %}"
        "{% with first=items.0 %}{{ first }}{% endwith %}{% now 'Y' as year %}{{ year }}",
        variables={"items": []},
    )
    assert template.pk


def test_includes_and_extends_are_syntax_errors_since_templates_have_no_files():
    with pytest.raises(ValidationError) as excinfo:
        sms_template(body='Hi\n{% include "footer.txt" %}', variables={})
    assert errors_of(excinfo)["body"] == [
        "Line 2: syntax error: {% include %} is not available in message templates: they are not files."
    ]


def test_an_sms_template_needs_a_body_and_has_no_subject_or_html():
    with pytest.raises(ValidationError) as excinfo:
        sms_template(body="", subject="Hello", html_body="<p>Hi</p>", variables={})
    errors = errors_of(excinfo)
    assert errors["body"] == ["SMS templates need a body."]
    assert errors["subject"] == ["SMS messages have no subject: leave it empty."]
    assert errors["html_body"] == ["SMS messages have no HTML part: leave it empty."]


def test_an_email_template_needs_a_subject_and_some_content():
    with pytest.raises(ValidationError) as excinfo:
        template_create(name="E", slug="e", channel="email", variables={})
    errors = errors_of(excinfo)
    assert errors["subject"] == ["An email template needs a subject."]
    assert "text body or an HTML body" in errors["body"][0]


def test_variable_names_must_be_usable_in_a_template():
    with pytest.raises(ValidationError) as excinfo:
        sms_template(body="Hi", variables={"first name": None, "2fa": None, "items": []})
    assert len(errors_of(excinfo)["variables"]) == 2


def test_an_update_that_undeclares_a_variable_a_translation_uses_is_refused():
    template = sms_template(body="Your plan: {{ plan }}", variables={"plan": None})
    template_translation_set(template=template, language="fr", body="Votre forfait : {{ plan }}")
    with pytest.raises(ValidationError) as excinfo:
        template_update(template=template, body="Hi there", variables={})
    assert "The fr translation: Line 1: 'plan' is not a declared variable" in errors_of(excinfo)["variables"][0]
    template.refresh_from_db()
    assert template.body == "Your plan: {{ plan }}"


def test_a_contacts_fields_can_be_used_without_declaring_them():
    template = sms_template(
        body="Hi {{ first_name }} ({{ name }}, {{ phone }}, {{ email }}, {{ language }}, {{ time_zone }})", variables={}
    )
    template_translation_set(template=template, language="fr", body="Salut {{ first_name }}")
    assert template.variables == {}


def test_an_undeclared_contact_field_is_required_when_rendering():
    template = sms_template(body="Hi {{ first_name }}", variables={})
    assert template_render(template=template, context={"first_name": "Ada"}).body == "Hi Ada"
    with pytest.raises(TemplateRenderError) as excinfo:
        template_render(template=template, context={})
    assert excinfo.value.missing == ("first_name",)


def test_declaring_a_contact_field_gives_it_a_default():
    template = sms_template(body="Hi {{ first_name }}", variables={"first_name": "there"})
    assert template_render(template=template, context={}).body == "Hi there"


def test_a_custom_attribute_still_needs_declaring():
    with pytest.raises(ValidationError) as excinfo:
        sms_template(body="Hi {{ name }}, your plan is {{ plan }}", variables={})
    [message] = errors_of(excinfo)["body"]
    assert message.startswith("Line 1: 'plan' is not a declared variable.")


def test_the_preview_accepts_contact_fields_and_asks_for_their_sample_values():
    preview = template_preview(channel="sms", body="Hi {{ first_name }}", variables={}, sample_context={})
    assert preview.errors["body"][0].startswith("Missing variable(s) in body: 'first_name' (line 1).")
    preview = template_preview(
        channel="sms", body="Hi {{ first_name }}", variables={}, sample_context={"first_name": "Ada"}
    )
    assert preview.content is not None and preview.content.body == "Hi Ada"


def test_a_translation_uses_the_templates_declared_variables():
    template = sms_template()
    with pytest.raises(ValidationError) as excinfo:
        template_translation_set(template=template, language="fr", body="Salut {{ prenom }}")
    assert "'prenom' is not a declared variable" in errors_of(excinfo)["body"][0]


def test_a_translation_in_the_templates_own_language_is_refused():
    template = sms_template(language="en")
    with pytest.raises(ValidationError) as excinfo:
        template_translation_set(template=template, language="EN", body="Hi {{ name }}")
    assert "the template's own language" in errors_of(excinfo)["language"][0]


# --- Rendering -------------------------------------------------------------------------------------------------


def test_a_missing_variable_fails_the_render_with_a_readable_reason_instead_of_hello_comma():
    template = sms_template()
    with pytest.raises(TemplateRenderError) as excinfo:
        template_render(template=template, context={})
    assert excinfo.value.missing == ("name",)
    assert excinfo.value.reason == (
        "Missing variable(s) in body: 'name' (line 1). No value was given and the template declares no default."
    )


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_blank_value_counts_as_missing(blank):
    with pytest.raises(TemplateRenderError):
        template_render(template=sms_template(), context={"name": blank})


def test_declared_defaults_fill_missing_and_blank_values():
    template = sms_template(body="Hi {{ name }}, from {{ shop }}", variables={"name": "there", "shop": "Tidings"})
    assert template_render(template=template, context={"name": ""}).body == "Hi there, from Tidings"
    assert template_render(template=template, context={"name": "Ada"}).body == "Hi Ada, from Tidings"


def test_a_missing_attribute_of_a_given_variable_fails_the_render():
    template = sms_template(body="Total: {{ order.total }}", variables={"order": None})
    with pytest.raises(TemplateRenderError) as excinfo:
        template_render(template=template, context={"order": {"number": 12}})
    assert "'order.total'" in excinfo.value.reason


def test_a_variable_only_used_in_a_condition_is_still_required():
    template = sms_template(body="{% if vip %}Welcome back{% else %}Welcome{% endif %}", variables={"vip": None})
    with pytest.raises(TemplateRenderError):
        template_render(template=template, context={})
    assert template_render(template=template, context={"vip": True}).body == "Welcome back"


def test_text_parts_are_not_escaped_and_the_html_part_is():
    template = template_create(
        name="E",
        slug="e",
        channel="email",
        subject="Hi {{ name }}",
        body="Hi {{ name }}",
        html_body="<p>Hi {{ name }}</p>",
        variables={"name": None},
    )
    content = template_render(template=template, context={"name": "Ada & <Co>"})
    assert content.subject == "Hi Ada & <Co>"
    assert content.body == "Hi Ada & <Co>"
    assert content.html_body == "<p>Hi Ada &amp; &lt;Co&gt;</p>"


def test_an_email_without_a_text_body_gets_one_derived_from_its_html():
    template = template_create(
        name="E",
        slug="e",
        channel="email",
        subject="Shipped",
        html_body=(
            "<html><head><style>p{color:red}</style></head><body><h1>Hello {{ name }}</h1>"
            "<p>Your order has <b>shipped</b>.</p><p>Track it <a href='https://t.example/1'>here</a>.</p>"
            "<ul><li>One</li><li>Two</li></ul></body></html>"
        ),
        variables={"name": None},
    )
    content = template_render(template=template, context={"name": "Ada"})
    assert content.body == (
        "Hello Ada\n\nYour order has shipped.\n\nTrack it [here](https://t.example/1).\n\n  * One\n  * Two\n"
    )


def test_a_contacts_language_picks_the_translation_and_falls_back_to_the_default():
    template = sms_template(language="en")
    template_translation_set(template=template, language="fr", body="Bonjour {{ name }}")
    template_translation_set(template=template, language="pt-br", body="Olá {{ name }}")
    context = {"name": "Ada"}

    def render(language):
        content = template_render(template=template, context=context, language=language)
        return content.language, content.body

    assert render("fr") == ("fr", "Bonjour Ada")
    assert render("fr-ca") == ("fr", "Bonjour Ada")  # a regional variant reads the language's version
    assert render("pt-br") == ("pt-br", "Olá Ada")
    assert render("pt") == ("en", "Hi Ada")  # a base language does not read a regional version
    assert render("de") == ("en", "Hi Ada")
    assert render("") == ("en", "Hi Ada")


def test_a_message_request_can_ask_for_a_language():
    template = sms_template()
    template_translation_set(template=template, language="fr", body="Bonjour {{ name }}")
    request, content = message_request_validate(
        channel="sms", to="+14155550100", template="welcome", context={"name": "Ada"}, language="fr"
    )
    assert content.body == "Bonjour Ada"
    assert request.language == "fr"


def test_the_api_takes_a_language_for_the_template(api):
    template = sms_template()
    template_translation_set(template=template, language="fr", body="Bonjour {{ name }}")
    response = api.post(
        "/api/v1/messages/",
        {"channel": "sms", "to": "+14155550100", "template": "welcome", "context": {"name": "Ada"}, "language": "fr"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["body"] == "Bonjour Ada"


def test_the_factory_template_renders():
    template = TemplateFactory()
    assert template_render(template=template, context={"name": "Ada"}).body == "Hello Ada"


# --- Preview ---------------------------------------------------------------------------------------------------


def test_the_preview_renders_with_sample_values_and_counts_sms_segments():
    preview = template_preview(
        channel="sms",
        body="Hi {{ name }}, it\u2019s {{ shop }}",
        variables={"name": None, "shop": "Tidings"},
        sample_context={"name": "Ada"},
    )
    data = preview.as_dict()
    assert data["ok"] is True
    assert data["body"] == "Hi Ada, it\u2019s Tidings"
    assert data["sms"]["encoding"] == "UCS-2"
    assert (data["sms"]["characters"], data["sms"]["segments"]) == (20, 1)
    assert "RIGHT SINGLE QUOTATION MARK" in data["sms"]["warnings"][0]


def test_the_preview_reports_what_the_save_would_refuse():
    preview = template_preview(channel="sms", body="Hi {{ nmae }}", variables={"name": None})
    assert preview.as_dict()["ok"] is False
    assert "Line 1: 'nmae' is not a declared variable" in preview.errors["body"][0]


def test_the_preview_asks_for_a_sample_value_of_a_required_variable():
    preview = template_preview(channel="sms", body="Hi {{ name }}", variables={"name": None}, sample_context={})
    assert "'name'" in preview.errors["body"][0]
    assert "sample value" in preview.errors["body"][0]


PLAIN_SOURCES = ["Hi {{ name }}!", "{{name}}", "{{ a }}{{ b }} and {{ a }}", "no variables at all", "\n{{ name }}\n"]
OTHER_SOURCES = [
    "Hi {{ name|upper }}",
    "{{ order.total }}",
    "{{ 'literal' }}",
    "{{ 3 }}",
    "{% if name %}Hi {{ name }}{% endif %}",
    "{{ _('Hello') }}",
    "{% for x in items %}{{ x }}{% endfor %}",
]
VALUES = ["Ann", "", "<b>Tom & \"Jerry\"</b> 'x'", "ünïcødé ☃", 42, 1.5, None, ["a"], {"total": 3}]


def test_plain_templates_render_exactly_as_djangos_engine_does_whatever_the_values():
    from django.template import Context
    from django.utils.safestring import SafeString, mark_safe

    from content.template_syntax import compile_template, plain_parts, render_plain

    assert all(plain_parts(source) is not None for source in PLAIN_SOURCES)
    assert all(plain_parts(source) is None for source in OTHER_SOURCES)
    assert render_plain("{{ True }}", {}) is None  # a name the engine's context has of its own
    for source in PLAIN_SOURCES + OTHER_SOURCES:
        for html in (False, True):
            for value in [*VALUES, mark_safe("<i>safe</i>")]:
                for context in ({"name": value, "a": value, "b": "B", "order": value, "items": [value]}, {}):
                    fast = render_plain(source, context, html=html)
                    engine = compile_template(source, html=html).render(Context(context, autoescape=html))
                    if fast is not None:
                        # Text comes back a plain str (never "safe": see test_template_sandbox), HTML as SafeString.
                        assert fast == engine and isinstance(fast, SafeString) == html, (source, html, context)
                    # Plain text values are the fast path's; anything else is left to the engine.
                    plain_values = context and type(value) is str
                    assert (fast is not None) == bool(
                        source in PLAIN_SOURCES and (plain_values or "{{" not in source)
                    ), (source, html, context)


def test_render_string_takes_the_plain_path_and_still_reports_missing_names():
    assert render_string("Hi {{ name }}", {"name": "<Ann>"}, html=True) == "Hi &lt;Ann&gt;"
    assert render_string("Hi {{ name }}", {"name": "<Ann>"}) == "Hi <Ann>"
    assert render_string("You are {{ age }}", {"age": 42}) == "You are 42"  # the engine's, for a number
    with pytest.raises(TemplateRenderError) as raised:
        render_string("Hi {{ name }}", {})
    assert raised.value.missing == ("name",)
