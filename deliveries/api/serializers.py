from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.utils.serializer_helpers import ReturnDict

from content.models import MessageTemplate

from ..input_limits import (
    MAX_ID,
    MAX_JSON_BYTES,
    MAX_SECONDS,
    MAX_SMS_CHARACTERS,
    MAX_TEXT_CHARACTERS,
    PAST_TOLERANCE,
    JsonWithinLimits,
)
from ..models import Category, DependencyCondition, Message, MessageEvent, Priority, Purpose
from ..services.messages import (
    MAX_MEDIA_URLS,
    MAX_SUBJECT_CHARACTERS,
    SUPPORTED_CHANNELS,
    MessageValidationError,
    message_request_validate,
)
from ..shims.drf import PlainStringFields, SharedRepresentation
from .strict_serializers import StrictBooleanField, StrictSerializer

_JSON_LIMIT = f"At most {MAX_JSON_BYTES:,} bytes as JSON; no NUL characters."


class MessageCreateSerializer(StrictSerializer):
    """Input of POST /api/v1/messages/. Validates everything, including that the template renders.

    Fields it does not declare are refused by name (400).
    """

    channel = serializers.ChoiceField(choices=SUPPORTED_CHANNELS)
    to = serializers.CharField(max_length=320)
    body = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_TEXT_CHARACTERS,
        help_text=f"SMS and WhatsApp: at most {MAX_SMS_CHARACTERS:,} characters once rendered (Twilio's limit); "
        f"email: at most {MAX_TEXT_CHARACTERS:,}.",
    )
    subject = serializers.CharField(required=False, allow_blank=True, max_length=MAX_SUBJECT_CHARACTERS)
    html_body = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_TEXT_CHARACTERS
    )
    template = serializers.SlugField(required=False, allow_null=True, allow_blank=True, max_length=100)
    # DRF's metaclass takes declared fields off the class, so this field does not shadow Field.context (the stubs
    # cannot see that).
    context = serializers.DictField(  # type: ignore[assignment]
        required=False, default=dict, validators=[JsonWithinLimits()], help_text=f"Template variables. {_JSON_LIMIT}"
    )
    language = serializers.CharField(
        required=False, allow_blank=True, max_length=15, help_text="Picks the template's translation, like 'fr'."
    )
    send_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text=f"When to send, up to a year ahead; empty sends now. More than {PAST_TOLERANCE.seconds // 60} "
        "minutes in the past is refused.",
    )
    priority = serializers.ChoiceField(choices=Priority.choices, required=False, default=Priority.DEFAULT)
    metadata = serializers.DictField(
        required=False, default=dict, validators=[JsonWithinLimits()], help_text=_JSON_LIMIT
    )
    sender = serializers.CharField(
        required=False, allow_blank=True, max_length=320, help_text="Overrides the configured sender for this message."
    )
    category = serializers.ChoiceField(
        choices=Category.choices,
        required=False,
        default=Category.MARKETING,
        help_text="`transactional` messages (one-time codes, receipts) reach people who opted out of marketing; "
        "nothing reaches a hard bounce.",
    )
    purpose = serializers.ChoiceField(
        choices=Purpose.choices,
        required=False,
        allow_blank=True,
        help_text="`otp`: a one-time code (category `transactional` only), under the strictest velocity limits; "
        "past one it is created `held` for review, with the reason in `last_error_message`.",
    )
    media_urls = serializers.ListField(
        child=serializers.URLField(max_length=2048),
        required=False,
        default=list,
        max_length=MAX_MEDIA_URLS,
        error_messages={"max_length": "At most {max_length} media URLs per message."},
        help_text="MMS / WhatsApp media (public URLs).",
    )
    content_sid = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Twilio Content SID (WhatsApp templates)."
    )
    content_variables = serializers.DictField(
        child=serializers.CharField(max_length=1000),
        required=False,
        default=dict,
        validators=[JsonWithinLimits()],
        help_text=_JSON_LIMIT,
    )
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="Too late after this (at most a year after the send time): the message fails rather than go out.",
    )
    valid_for = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_SECONDS,
        help_text="Seconds after the send time (up to a year); sets expires_at.",
    )
    depends_on = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="Id of a message this one waits for (status `waiting`).",
    )
    depends_on_condition = serializers.ChoiceField(
        choices=DependencyCondition.choices,
        required=False,
        allow_blank=True,
        help_text="What the parent must do first: `sent`, `delivered` (the default), or, for an email parent, "
        "`not_opened` / `not_clicked` within `depends_on_window`.",
    )
    depends_on_delay = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_SECONDS,
        help_text="Seconds to wait after the condition is met.",
    )
    depends_on_window = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_SECONDS,
        help_text="not_opened / not_clicked: seconds the parent has from its send (default 86400).",
    )

    quiet_hours = StrictBooleanField(
        required=False,
        default=True,
        help_text="false: send at the time asked even inside the recipient's quiet hours (QUIET_HOURS); takes the "
        "transactional:send scope. By default a message due inside them is scheduled for their end.",
    )

    def validate(self, attrs):
        try:
            request, content = message_request_validate(**attrs)
        except MessageValidationError as error:
            raise serializers.ValidationError(error.errors) from error
        return {"request": request, "content": content}


_PLAIN_MESSAGE_FIELDS = PlainStringFields(MessageCreateSerializer)


def plain_message_validate(data: Any) -> dict[str, Any] | None:
    """MessageCreateSerializer's validated_data for a plain request, or None when the request needs the
    serializer itself.

    A plain request is a dict whose fields are all strings the serializer would accept as they are (channel, to,
    body, subject, sender...), and that message_request_validate accepts. Running DRF's field machinery costs
    more than the rest of creating such a message, and batches are made of them (deliveries.shims.drf). Anything
    else returns None, so every error still comes from the serializer, worded as it always was.
    """
    attrs = _PLAIN_MESSAGE_FIELDS.validated(data)
    if attrs is None:
        return None
    try:
        request, content = message_request_validate(**attrs)
    except MessageValidationError:
        return None
    return {"request": request, "content": content}


class MessageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageEvent
        fields = ["created_at", "kind", "from_status", "to_status", "code", "detail", "data"]


class MessageSerializer(serializers.ModelSerializer):
    to = serializers.CharField(source="recipient")
    template: serializers.SlugRelatedField[MessageTemplate] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    depends_on_delay = serializers.SerializerMethodField()
    depends_on_window = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "channel",
            "to",
            "sender",
            "subject",
            "body",
            "html_body",
            "template",
            "context",
            "metadata",
            "priority",
            "category",
            "purpose",
            "media_urls",
            "content_sid",
            "content_variables",
            "status",
            "send_at",
            "expires_at",
            "estimated_cost",
            "cost_currency",
            "actual_cost",
            "actual_cost_currency",
            "provider",
            "provider_message_id",
            "attempts",
            "last_error_code",
            "last_error_message",
            "campaign",
            "depends_on",
            "depends_on_condition",
            "depends_on_delay",
            "depends_on_window",
            "created_at",
            "queued_at",
            "sending_at",
            "sent_at",
            "delivered_at",
            "failed_at",
            "cancelled_at",
            "read_at",
            "opens_count",
            "first_opened_at",
            "clicks_count",
            "first_clicked_at",
        ]
        read_only_fields = fields

    def get_depends_on_delay(self, message: Message) -> int | None:
        """Seconds, like the request."""
        return int(message.depends_on_delay.total_seconds()) if message.depends_on_delay is not None else None

    def get_depends_on_window(self, message: Message) -> int | None:
        """Seconds, like the request."""
        return int(message.depends_on_window.total_seconds()) if message.depends_on_window is not None else None


_MESSAGE_REPRESENTATION = SharedRepresentation(MessageSerializer)


def message_data(message: Message) -> ReturnDict:
    """MessageSerializer(message).data, from one serializer whose fields are built once per process
    (deliveries.shims.drf)."""
    return _MESSAGE_REPRESENTATION.data(message)


class MessageDetailSerializer(MessageSerializer):
    events = MessageEventSerializer(many=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "events"]
        read_only_fields = fields
