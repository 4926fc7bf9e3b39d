import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Contact, ContactList, Segment
from campaigns.selectors import contact_context, segment_contacts
from campaigns.services.contacts import contact_create, contact_update, template_render_for_contact
from campaigns.services.segments import segment_create
from content.services.templates import (
    CONTACT_VARIABLES,
    TemplateRenderError,
    template_create,
    template_translation_set,
)
from tests.factories import ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db


def test_a_contact_is_stored_with_normalised_fields():
    contact = contact_create(
        name="  Ada   Lovelace ",
        phone="+1 (415) 555-0100",
        email="Ada@Example.COM",
        language="pt_BR",
        time_zone="europe/paris",
        sms_consent="yes",
        email_consent="0",
        attributes={"plan": "gold"},
    )
    assert (contact.name, contact.phone, contact.email) == ("Ada Lovelace", "+14155550100", "ada@example.com")
    assert (contact.language, contact.time_zone) == ("pt-br", "Europe/Paris")
    assert (contact.sms_consent, contact.whatsapp_consent, contact.email_consent) == (True, False, False)
    assert contact.has_consent("sms") and not contact.has_consent("email")


def test_every_bad_field_of_a_contact_is_reported_at_once():
    with pytest.raises(ValidationError) as excinfo:
        contact_create(
            phone="555", email="not-an-email", language="klingon", time_zone="Mars/Olympus", sms_consent="maybe"
        )
    errors = excinfo.value.message_dict
    assert set(errors) == {"phone", "email", "language", "time_zone", "sms_consent"}
    assert "Mars/Olympus" in errors["time_zone"][0]
    assert "IANA" in errors["time_zone"][0]


def test_a_contact_needs_a_phone_or_an_email():
    with pytest.raises(ValidationError) as excinfo:
        contact_create(name="Nobody")
    assert "needs a phone number or an email address" in str(excinfo.value)


def test_two_contacts_cannot_share_a_phone_or_an_email():
    contact_create(phone="+14155550100", email="ada@example.com")
    with pytest.raises(ValidationError, match="Another contact has this phone number"):
        contact_create(phone="+1 415 555 0100")
    with pytest.raises(ValidationError, match="Another contact has this email address"):
        contact_create(email="ADA@example.com")
    # Contacts without one of the two do not collide on the blank value.
    contact_create(email="bob@example.com")
    contact_create(email="eve@example.com")


def test_attribute_names_must_be_usable_as_template_variables():
    with pytest.raises(ValidationError) as excinfo:
        contact_create(phone="+14155550100", attributes={"first name": "x", "email": "y", "plan": "gold"})
    assert len(excinfo.value.message_dict["attributes"]) == 2


def test_an_update_changes_only_the_fields_given():
    contact = ContactFactory(name="Ada", time_zone="UTC")
    contact_update(contact=contact, time_zone="America/New_York")
    contact.refresh_from_db()
    assert (contact.name, contact.time_zone) == ("Ada", "America/New_York")


# --- Contacts in templates ------------------------------------------------------------------------------------


def test_a_contacts_fields_and_attributes_are_template_variables():
    contact = ContactFactory(name="Ada Lovelace", attributes={"plan": "gold", "empty": ""})
    context = contact_context(contact=contact)
    assert context["first_name"] == "Ada"
    assert context["plan"] == "gold"
    assert "empty" not in context
    template = template_create(
        name="T",
        slug="t",
        channel="sms",
        body="Hi {{ first_name }}, your {{ plan }} plan. ({{ phone }})",
        variables={"first_name": None, "plan": None, "phone": None},
    )
    content = template_render_for_contact(template=template, contact=contact)
    assert content.body == f"Hi Ada, your gold plan. ({contact.phone})"


def test_the_fields_a_contact_fills_are_those_templates_may_use_undeclared():
    contact = ContactFactory(name="Ada Lovelace", email="ada@example.com", language="fr", time_zone="Europe/Paris")
    assert set(contact_context(contact=contact)) == set(CONTACT_VARIABLES)


def test_a_template_using_the_contacts_fields_undeclared_renders_them_for_each_contact():
    template = template_create(name="T", slug="t", channel="sms", body="Hi {{ name }} ({{ email }})", variables={})
    contact = ContactFactory(name="Ada Lovelace", email="ada@example.com")
    assert template_render_for_contact(template=template, contact=contact).body == "Hi Ada Lovelace (ada@example.com)"
    nameless = ContactFactory(name="", email="anon@example.com")
    with pytest.raises(TemplateRenderError) as excinfo:
        template_render_for_contact(template=template, contact=nameless)
    assert excinfo.value.missing == ("name",)


def test_a_contact_without_a_name_gets_the_default_or_a_readable_failure_never_hello_comma():
    contact = ContactFactory(name="", language="fr")
    with_default = template_create(
        name="A", slug="a", channel="sms", body="Hello {{ first_name }},", variables={"first_name": "there"}
    )
    assert template_render_for_contact(template=with_default, contact=contact).body == "Hello there,"
    required = template_create(
        name="B", slug="b", channel="sms", body="Hello {{ first_name }},", variables={"first_name": None}
    )
    with pytest.raises(TemplateRenderError) as excinfo:
        template_render_for_contact(template=required, contact=contact)
    assert "'first_name'" in excinfo.value.reason


def test_a_contacts_language_picks_the_template_translation():
    template = template_create(name="T", slug="t", channel="sms", body="Hi {{ name }}", variables={"name": None})
    template_translation_set(template=template, language="fr", body="Salut {{ name }}")
    french = ContactFactory(name="Zoé", language="fr-ca")
    german = ContactFactory(name="Jörg", language="de")
    assert template_render_for_contact(template=template, contact=french).body == "Salut Zoé"
    assert template_render_for_contact(template=template, contact=german).body == "Hi Jörg"


# --- Segments -------------------------------------------------------------------------------------------------


@pytest.fixture
def people():
    vip = ContactListFactory(name="VIP")
    return {
        "ada": ContactFactory(name="Ada", language="en", attributes={"plan": "Gold", "city": "London"}, lists=[vip]),
        "bob": ContactFactory(name="Bob", language="fr", attributes={"plan": "silver"}, sms_consent=False),
        "eve": ContactFactory(name="Eve", language="fr", attributes={}, email=""),
    }


def names(segment):
    return sorted(contact.name for contact in segment_contacts(segment=segment))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], ["Ada", "Bob", "Eve"]),
        ([{"field": "language", "op": "eq", "value": "fr"}], ["Bob", "Eve"]),
        ([{"field": "attributes.plan", "op": "eq", "value": "gold"}], ["Ada"]),
        ([{"field": "attributes.plan", "op": "ne", "value": "gold"}], ["Bob", "Eve"]),
        ([{"field": "attributes.plan", "op": "in", "value": ["gold", "silver"]}], ["Ada", "Bob"]),
        ([{"field": "attributes.plan", "op": "not_in", "value": "gold, silver"}], ["Eve"]),
        ([{"field": "attributes.city", "op": "set"}], ["Ada"]),
        ([{"field": "attributes.city", "op": "not_set"}], ["Bob", "Eve"]),
        ([{"field": "attributes.city", "op": "contains", "value": "ondo"}], ["Ada"]),
        ([{"field": "name", "op": "startswith", "value": "e"}], ["Eve"]),
        ([{"field": "email", "op": "not_set"}], ["Eve"]),
        ([{"field": "sms_consent", "op": "eq", "value": "yes"}], ["Ada", "Eve"]),
        ([{"field": "list", "op": "in", "value": ["VIP"]}], ["Ada"]),
        ([{"field": "list", "op": "not_in", "value": ["VIP"]}], ["Bob", "Eve"]),
        (
            [
                {"field": "language", "op": "eq", "value": "fr"},
                {"field": "sms_consent", "op": "eq", "value": True},
            ],
            ["Eve"],
        ),
    ],
)
def test_a_segment_selects_the_contacts_matching_all_its_filters(people, filters, expected):
    segment = segment_create(name="S", filters=filters)
    assert names(segment) == expected


def test_a_segment_can_match_any_filter_within_a_list(people):
    extra = ContactListFactory(name="Extra")
    people["bob"].lists.add(extra)
    people["eve"].lists.add(extra)
    segment = segment_create(
        name="S",
        match=Segment.Match.ANY,
        contact_list=extra,
        filters=[
            {"field": "attributes.plan", "op": "eq", "value": "silver"},
            {"field": "name", "op": "eq", "value": "ada"},
        ],
    )
    assert names(segment) == ["Bob"]


def test_a_segment_is_evaluated_when_used_not_when_saved(people):
    segment = segment_create(name="S", filters=[{"field": "language", "op": "eq", "value": "fr"}])
    ContactFactory(name="Zoé", language="fr")
    assert names(segment) == ["Bob", "Eve", "Zoé"]


def test_bad_segment_filters_are_refused_by_number():
    with pytest.raises(ValidationError) as excinfo:
        segment_create(
            name="S",
            filters=[
                {"field": "language", "op": "eq", "value": "fr"},
                {"field": "plan", "op": "eq", "value": "gold"},
                {"field": "sms_consent", "op": "eq", "value": "perhaps"},
                {"field": "attributes.plan", "op": "in", "value": []},
                {"field": "list", "op": "contains", "value": "VIP"},
            ],
        )
    messages = excinfo.value.messages
    assert [m.split(":")[0] for m in messages] == ["Filter 2", "Filter 3", "Filter 4", "Filter 5"]
    assert "unknown field 'plan'" in messages[0]
    assert not Segment.objects.exists()
    assert Contact.objects.count() == 0


def test_more_contacts_than_a_statement_takes_parameters_are_created_and_deleted_through_the_orm():
    # PostgreSQL takes at most 65,535 parameters a statement when they are bound on the server; the collector
    # deleting contacts lists them (and their list memberships) in one statement unless the backend says so.
    count = 2**16 + 10
    audience = ContactList.objects.create(name="everyone")
    contacts = Contact.objects.bulk_create(Contact(name=f"P{i}", phone=f"+1415{7000000 + i}") for i in range(count))
    Contact.lists.through.objects.bulk_create(
        Contact.lists.through(contact_id=contact.pk, contactlist_id=audience.pk) for contact in contacts
    )
    _deleted, by_model = Contact.objects.all().delete()
    assert by_model["campaigns.Contact"] == count
    assert not Contact.lists.through.objects.exists()


def test_the_fan_outs_ranges_of_recipients_are_exactly_the_recipients_in_each_range():
    from campaigns.models import Campaign
    from campaigns.selectors import campaign_recipients, campaign_recipients_between

    audience, other = ContactListFactory(), ContactListFactory()
    contacts = [
        ContactFactory(
            phone=f"+1415{7000000 + i}",
            sms_consent=i % 4 != 0,
            email=f"p{i}@example.com" if i % 3 else "",
            email_consent=i % 4 != 1,
        )
        for i in range(30)
    ]
    for i, contact in enumerate(contacts):
        if i % 5:
            contact.lists.add(audience)
        if i % 2:
            contact.lists.add(other)  # memberships of another list in the same id range
    segment = segment_create(name="S", filters=[{"field": "name", "op": "set"}], contact_list=audience)
    ids = [contact.pk for contact in contacts]
    for campaign in (Campaign(contact_list=audience), Campaign(segment=segment)):
        for channel in ("sms", "email"):
            everyone = list(campaign_recipients(campaign=campaign, channel=channel).order_by("pk"))
            assert everyone, (campaign, channel)
            for after, upto in ((0, None), (ids[4], ids[17]), (ids[17], None), (ids[-1], None)):
                between = campaign_recipients_between(campaign=campaign, channel=channel, after=after, upto=upto)
                expected = [c for c in everyone if c.pk > after and (upto is None or c.pk <= upto)]
                assert list(between.order_by("pk")) == expected, (campaign, channel, after, upto)
