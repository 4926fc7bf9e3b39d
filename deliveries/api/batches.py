"""The batch endpoints: `POST /api/v1/messages/batch/` (many messages in one request, each checked like a single
one) and `GET /api/v1/batches/` (bulk sends with their messages counted by status). Thin: parse, call a service."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import ApiScope, AuditEntry, Batch
from ..selectors import batch_status_counts
from ..services.api_keys import api_key_message_refusal
from ..services.audit import audit_record
from ..services.batches import (
    MAX_BATCH,
    BatchOutcome,
    ItemInvalid,
    batch_messages_create,
    batch_outcome_replay,
    batch_templates,
)
from ..services.idempotency import idempotent_create, request_fingerprint
from .idempotency import idempotency_key_parameter, idempotent_response
from .permissions import sees_every_message
from .serializers import MessageCreateSerializer, plain_message_validate
from .strict_serializers import StrictModelSerializer, StrictSerializer


class BatchItemSerializer(MessageCreateSerializer):
    """One item of a batch: the fields of POST /api/v1/messages/, with the batch's templates looked up once."""

    def validate(self, attrs):
        slug = attrs.get("template")
        if slug and slug in self.context.get("templates", {}):
            attrs["template"] = self.context["templates"][slug]
        return super().validate(attrs)


class MessageBatchSerializer(StrictSerializer):
    defaults = serializers.DictField(
        required=False, default=dict, help_text="Fields every message starts from (those of a message)."
    )
    messages = serializers.ListField(
        child=serializers.JSONField(),
        min_length=1,
        max_length=MAX_BATCH,
        help_text=f"Up to {MAX_BATCH:,} messages, and a request body of at most MAX_REQUEST_BYTES (5 MB unless "
        "configured: 10,000 messages of about 500 bytes each); each one's fields override the defaults. More "
        "messages or bytes are refused whole with 413.",
    )
    atomic = serializers.BooleanField(required=False, default=False, help_text="Store nothing if any item is invalid.")


class BatchResultSerializer(serializers.Serializer):
    batch_id = serializers.IntegerField(allow_null=True)
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    held = serializers.IntegerField(
        help_text="Accepted items held for review by the velocity limits: their results say `status: held` and why."
    )
    results = serializers.ListField(child=serializers.DictField())


class BatchSerializer(StrictModelSerializer):
    by_status = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = ["id", "kind", "key", "file_name", "accepted", "rejected", "created_at", "finished_at", "by_status"]

    def get_by_status(self, batch) -> dict:
        return batch_status_counts(batch=batch)


class BatchViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Bulk sends (API batches and send_bulk runs) with their messages counted by status."""

    key_scope = ApiScope.MESSAGES_READ
    queryset = Batch.objects.order_by("-created_at", "-pk")
    serializer_class = BatchSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if not sees_every_message(self.request.auth):
            queryset = queryset.filter(api_key=self.request.auth)  # another key's batch is a 404
        return queryset


class MessageBatchView(APIView):
    """POST /api/v1/messages/batch/: up to 10,000 messages, each validated like POST /api/v1/messages/."""

    key_scope = ApiScope.BATCHES_SEND

    @extend_schema(
        request=MessageBatchSerializer,
        responses={
            201: BatchResultSerializer,
            400: OpenApiResponse(
                description="A malformed batch (fields named), or an atomic batch with an invalid item (the batch "
                "result, nothing stored)."
            ),
            413: OpenApiResponse(description="More than 10,000 messages, or a body over MAX_REQUEST_BYTES."),
            422: None,
        },
        parameters=[
            idempotency_key_parameter(
                "Send the batch again with the same key and get the original answer (with "
                "`Idempotent-Replayed: true`); nothing is stored twice. The same key with another body gets 422.",
            )
        ],
    )
    def post(self, request):
        messages = request.data.get("messages") if isinstance(request.data, dict) else None
        if isinstance(messages, list) and len(messages) > MAX_BATCH:
            return Response(batch_too_large(len(messages)), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        envelope = MessageBatchSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        defaults, messages = envelope.validated_data["defaults"], envelope.validated_data["messages"]
        context = {"templates": batch_templates(messages, defaults)}

        def validate_item(fields):
            validated = plain_message_validate(fields)  # most items: without DRF's per-field machinery
            if validated is None:
                item = BatchItemSerializer(data=fields, context=context)
                if not item.is_valid():
                    raise ItemInvalid(item.errors)
                validated = item.validated_data
            refusal = api_key_message_refusal(api_key=request.auth, request=validated["request"])
            if refusal is not None:
                raise ItemInvalid({refusal.field: [refusal.reason]})
            return validated["request"], validated["content"]

        def store(idempotency_key=None) -> BatchOutcome:
            outcome = batch_messages_create(
                defaults=defaults,
                messages=messages,
                atomic=envelope.validated_data["atomic"],
                validate_item=validate_item,
                api_key=request.auth,
                idempotency_key=idempotency_key,
            )
            if idempotency_key is not None and outcome.batch is None:
                raise NothingStored(outcome)  # rolls the key back: a corrected request may use it again
            return outcome

        def create(key: str | None) -> tuple[BatchOutcome, bool]:
            if key is None:
                return store(), True
            try:
                return idempotent_create(
                    api_key=request.auth,
                    key=key,
                    scope="messages.batch",
                    fingerprint=request_fingerprint(request.data),
                    create=store,
                    replay=lambda record: batch_outcome_replay(batch=record.batch),
                )
            except NothingStored as nothing:
                return nothing.outcome, True

        def respond(outcome: BatchOutcome, replayed: bool) -> Response:
            if outcome.batch is not None and not replayed:
                # One entry per batch, not per message: the batch's messages point at it.
                audit_record(
                    action=AuditEntry.Action.BATCH_CREATED,
                    target=outcome.batch,
                    request=request,
                    details={"accepted": outcome.accepted, "rejected": outcome.rejected},
                )
            code = status.HTTP_201_CREATED if outcome.accepted else status.HTTP_400_BAD_REQUEST
            return Response(outcome.as_response(), status=code)

        return idempotent_response(request, create=create, respond=respond)


def batch_too_large(count: int) -> dict:
    """The 413 answer for a batch of more messages than one request takes: both limits, so a client can split."""
    return {
        "messages": [f"{count:,} messages; a batch takes at most {MAX_BATCH:,}."],
        "detail": f"A batch takes at most {MAX_BATCH:,} messages and {settings.MAX_REQUEST_BYTES:,} bytes "
        "(MAX_REQUEST_BYTES); send the rest in another batch.",
        "limit_messages": MAX_BATCH,
        "limit_bytes": settings.MAX_REQUEST_BYTES,
    }


class NothingStored(Exception):
    """An atomic batch refused whole: its Idempotency-Key is not kept."""

    def __init__(self, outcome):
        super().__init__("nothing stored")
        self.outcome = outcome
