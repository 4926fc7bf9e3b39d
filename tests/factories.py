import factory

from campaigns.models import Contact, ContactList
from content.models import MessageTemplate
from deliveries.models import Message, Status


class MessageFactory(factory.django.DjangoModelFactory):
    """A message row as the create service would leave it; use the service when the pipeline matters."""

    class Meta:
        model = Message

    channel = "sms"
    recipient = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    body = factory.Sequence(lambda n: f"Message number {n}")
    status = Status.QUEUED


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    slug = factory.Sequence(lambda n: f"template-{n}")
    channel = "sms"
    body = "Hello {{ name }}"
    variables = factory.LazyFunction(lambda: {"name": None})


class ContactListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactList

    name = factory.Sequence(lambda n: f"List {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    """A contact with normalised fields, as the contact services would store it."""

    class Meta:
        model = Contact
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Contact {n}")
    phone = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    language = "en"
    sms_consent = True

    @factory.post_generation
    def lists(self, create, extracted, **kwargs):
        if create and extracted:
            self.lists.add(*extracted)
