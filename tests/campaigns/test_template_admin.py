import json

import pytest
from django.contrib.auth.models import Permission, User

from content.models import MessageTemplate
from content.services.templates import template_create, template_translation_set

pytestmark = pytest.mark.django_db

ADD = "/admin/content/messagetemplate/add/"
PREVIEW = "/admin/content/messagetemplate/preview/"


@pytest.fixture
def editor(client):
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["add_messagetemplate", "change_messagetemplate", "view_messagetemplate"]
        )
    )
    client.force_login(user)
    return user


def form_data(**overrides):
    data = {
        "name": "Welcome",
        "slug": "welcome",
        "channel": "sms",
        "language": "en",
        "variables": '{"name": null}',
        "sample_context": '{"name": "Ada"}',
        "subject": "",
        "body": "Hi {{ name }}",
        "html_body": "",
        "translations-TOTAL_FORMS": "0",
        "translations-INITIAL_FORMS": "0",
        "translations-MIN_NUM_FORMS": "0",
        "translations-MAX_NUM_FORMS": "1000",
    }
    return {**data, **overrides}


def with_translations(data, *translations):
    data = {**data, "translations-TOTAL_FORMS": str(len(translations))}
    for index, translation in enumerate(translations):
        for field in ("language", "subject", "body", "html_body"):
            data[f"translations-{index}-{field}"] = translation.get(field, "")
    return data


def test_the_admin_refuses_an_undeclared_variable_with_its_line_and_name(client, editor):
    response = client.post(ADD, form_data(body="Hi {{ name }}\nYour code: {{ code }}"))
    assert response.status_code == 200
    assert "Line 2: &#x27;code&#x27; is not a declared variable" in response.content.decode()
    assert not MessageTemplate.objects.exists()


def test_the_admin_saves_a_template_using_a_contact_field_it_did_not_declare(client, editor):
    response = client.post(ADD, form_data(variables="{}", body="Hi {{ first_name }}"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert MessageTemplate.objects.get().variables == {}


def test_the_template_page_says_which_variables_need_declaring(client, editor):
    page = client.get(ADD).content.decode()
    assert "use them without declaring them" in page
    assert "Declare here every other variable the content uses, such as a custom attribute" in page


def test_the_admin_refuses_a_syntax_error_with_its_line(client, editor):
    response = client.post(ADD, form_data(body="Hi\n{% if name %}{{ name }}"))
    assert response.status_code == 200
    assert "Line 2: syntax error" in response.content.decode()
    assert not MessageTemplate.objects.exists()


def test_the_admin_saves_a_valid_template_with_its_translations(client, editor):
    response = client.post(
        ADD, with_translations(form_data(language="EN"), {"language": "pt_BR", "body": "Olá {{ name }}"})
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    template = MessageTemplate.objects.get()
    assert template.language == "en"
    assert template.variables == {"name": None}
    assert [(t.language, t.body) for t in template.translations.all()] == [("pt-br", "Olá {{ name }}")]


def test_the_admin_checks_translations_against_the_declared_variables(client, editor):
    response = client.post(ADD, with_translations(form_data(), {"language": "fr", "body": "Salut {{ prenom }}"}))
    assert response.status_code == 200
    assert "&#x27;prenom&#x27; is not a declared variable" in response.content.decode()
    assert not MessageTemplate.objects.exists()


def test_the_admin_refuses_two_translations_in_the_same_language(client, editor):
    response = client.post(
        ADD,
        with_translations(
            form_data(), {"language": "fr", "body": "Salut {{ name }}"}, {"language": "FR", "body": "Hé"}
        ),
    )
    assert response.status_code == 200
    assert not MessageTemplate.objects.exists()


def test_the_change_page_previews_every_language_with_the_sample_values(client, editor):
    template = template_create(
        name="Welcome",
        slug="welcome",
        channel="sms",
        body="Hi {{ name }}, it\u2019s ready",
        variables={"name": None},
        sample_context={"name": "Ada"},
    )
    template_translation_set(template=template, language="fr", body="Bonjour {{ name }}")
    page = client.get(f"/admin/content/messagetemplate/{template.pk}/change/").content.decode()
    assert "Hi Ada, it\u2019s ready" in page
    assert "Bonjour Ada" in page
    assert "UCS-2 · 18 characters" in page
    assert "GSM-7 · 11 characters" in page
    assert "RIGHT SINGLE QUOTATION MARK" in page
    assert 'id="live-preview"' in page


def test_the_live_preview_renders_the_unsaved_form_and_counts_segments(client, editor):
    response = client.post(
        PREVIEW,
        {
            "channel": "sms",
            "body": "{{ greeting }} {{ name }}! " + "x" * 150,
            "variables": json.dumps({"name": None, "greeting": "Hello"}),
            "sample_context": json.dumps({"name": "Ada"}),
        },
    )
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] is True
    assert data["body"].startswith("Hello Ada! xxx")
    assert data["sms"] == {
        "encoding": "GSM-7",
        "characters": 161,
        "units": 161,
        "segments": 2,
        "units_per_segment": 153,
        "warnings": [],
    }


def test_the_live_preview_explains_what_is_wrong(client, editor):
    data = client.post(PREVIEW, {"channel": "sms", "body": "Hi {{ name }}", "variables": "{not json"}).json()
    assert data["ok"] is False
    assert "JSON object" in data["errors"]["variables"][0]


def test_the_live_preview_is_for_template_editors_only(client):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(user)
    assert client.post(PREVIEW, {"channel": "sms", "body": "Hi"}).status_code == 403


def test_the_former_admin_addresses_of_templates_and_batches_lead_to_their_pages(client):
    response = client.get("/admin/campaigns/messagetemplate/7/change/?a=1")
    assert (response.status_code, response["Location"]) == (301, "/admin/content/messagetemplate/7/change/?a=1")
    response = client.get("/admin/campaigns/batch/")
    assert (response.status_code, response["Location"]) == (301, "/admin/deliveries/batch/")
