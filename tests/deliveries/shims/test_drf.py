"""The DRF shims give what DRF gives: the plain fields' validated data, and a message's representation."""

import pytest
from rest_framework.fields import empty

from deliveries.api.serializers import MessageCreateSerializer, MessageSerializer, message_data
from deliveries.shims.drf import PlainStringFields
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "data",
    [
        {"channel": "sms", "to": " +14155550100 ", "body": "  Hi  "},
        {"channel": "email", "to": "a@example.com", "subject": "S", "body": "B", "priority": "high"},
        {"channel": "sms", "to": "+14155550100", "body": "", "category": "transactional", "sender": ""},
    ],
)
def test_plain_fields_validate_as_the_serializers_fields_do(data):
    fields = MessageCreateSerializer().fields
    expected = {name: fields[name].run_validation(value) for name, value in data.items()}
    expected |= {
        name: field.get_default()
        for name, field in fields.items()
        if name not in data and not field.required and field.default is not empty
    }
    assert PlainStringFields(MessageCreateSerializer).validated(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        {"channel": "sms", "to": "+14155550100", "body": "Hi\x00"},  # NUL: refused by DRF
        {"channel": "sms", "to": "+14155550100", "subject": "s" * 256},  # too long
        {"channel": "fax", "to": "+14155550100"},  # not a choice
        {"channel": "sms", "to": 14155550100},  # not a string
        {"to": "+14155550100"},  # a required field missing
        ["not", "a", "dict"],
    ],
)
def test_anything_the_fields_might_refuse_is_left_to_the_serializer(data):
    assert PlainStringFields(MessageCreateSerializer).validated(data) is None


def test_a_messages_representation_is_the_serializers():
    for message in [MessageFactory(), MessageFactory(channel="email", recipient="a@example.com", subject="S")]:
        shared = message_data(message)
        assert shared == MessageSerializer(message).data
        assert shared.serializer.instance == message
