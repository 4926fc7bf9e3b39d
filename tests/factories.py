import factory

from campaigns.models import MessageTemplate
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
