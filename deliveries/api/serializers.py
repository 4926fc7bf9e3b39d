from __future__ import annotations

from rest_framework import serializers

from ..models import Category, DependencyCondition, Message, MessageEvent, Priority
from ..services.messages import SUPPORTED_CHANNELS, MessageValidationError, message_request_validate


class MessageCreateSerializer(serializers.Serializer):
    """Input of POST /api/v1/messages/. Validates everything, including that the template renders."""

    channel = serializers.ChoiceField(choices=SUPPORTED_CHANNELS)
    to = serializers.CharField(max_length=320)
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    subject = serializers.CharField(required=False, allow_blank=True, max_length=255)
    html_body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    template = serializers.SlugField(required=False, allow_null=True, allow_blank=True)
    context = serializers.DictField(required=False, default=dict)
    language = serializers.CharField(
        required=False, allow_blank=True, max_length=15, help_text="Picks the template's translation, like 'fr'."
    )
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False, default=Priority.DEFAULT)
    metadata = serializers.DictField(required=False, default=dict)
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
    media_urls = serializers.ListField(
        child=serializers.URLField(), required=False, default=list, help_text="MMS / WhatsApp media (public URLs)."
    )
    content_sid = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Twilio Content SID (WhatsApp templates)."
    )
    content_variables = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Too late after this: the message fails rather than go out."
    )
    valid_for = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Seconds after the send time; sets expires_at."
    )
    depends_on = serializers.IntegerField(
        required=False, allow_null=True, help_text="Id of a message this one waits for (status `waiting`)."
    )
    depends_on_condition = serializers.ChoiceField(
        choices=DependencyCondition.choices,
        required=False,
        allow_blank=True,
        help_text="What the parent must do first: `sent`, `delivered` (the default), or, for an email parent, "
        "`not_opened` / `not_clicked` within `depends_on_window`.",
    )
    depends_on_delay = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, help_text="Seconds to wait after the condition is met."
    )
    depends_on_window = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="not_opened / not_clicked: seconds the parent has from its send (default 86400).",
    )

    def validate(self, attrs):
        try:
            request, content = message_request_validate(**attrs)
        except MessageValidationError as error:
            raise serializers.ValidationError(error.errors) from error
        return {"request": request, "content": content}


class MessageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageEvent
        fields = ["created_at", "kind", "from_status", "to_status", "code", "detail", "data"]


class MessageSerializer(serializers.ModelSerializer):
    to = serializers.CharField(source="recipient")
    template = serializers.SlugRelatedField(slug_field="slug", read_only=True)
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
            "media_urls",
            "content_sid",
            "content_variables",
            "status",
            "send_at",
            "expires_at",
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


class MessageDetailSerializer(MessageSerializer):
    events = MessageEventSerializer(many=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "events"]
        read_only_fields = fields
