from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ..models import ApiScope, AuditEntry, Message
from ..selectors import message_outcome_summary
from ..services.api_keys import api_key_message_refusal
from ..services.audit import audit_record
from ..services.holds import held_messages_release
from ..services.idempotency import request_fingerprint
from ..services.messages import message_cancel, message_create, message_create_idempotent
from .filters import MessageFilter
from .idempotency import idempotency_key_parameter, idempotent_response
from .permissions import sees_every_message
from .serializers import (
    MessageCreateSerializer,
    MessageDetailSerializer,
    MessageSerializer,
    message_data,
    plain_message_validate,
)


class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Send messages and follow them: create, list, fetch with the timeline, cancel, release a held one."""

    queryset = Message.objects.select_related("template").all()
    filterset_class = MessageFilter
    key_scope = ApiScope.MESSAGES_READ
    # Releasing what the cost guard held overrides a spend cap: for `admin` keys only.
    key_scopes = {"create": ApiScope.MESSAGES_SEND, "cancel": ApiScope.MESSAGES_CANCEL, "release": ApiScope.ADMIN}

    def get_queryset(self):
        queryset = super().get_queryset()
        if not sees_every_message(self.request.auth):
            queryset = queryset.filter(api_key=self.request.auth)  # another key's message is a 404
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("events")
        return queryset

    def get_serializer_class(self):
        return MessageDetailSerializer if self.action == "retrieve" else MessageSerializer

    @extend_schema(
        request=MessageCreateSerializer,
        responses={201: MessageSerializer, 403: None, 422: None},
        parameters=[
            idempotency_key_parameter(
                "Send a request again with the same key and get the original message back (with "
                "`Idempotent-Replayed: true`), never a second one. The same key with another body is refused (422).",
            )
        ],
    )
    def create(self, request):
        validated = plain_message_validate(request.data)
        if validated is None:
            serializer = MessageCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            validated = serializer.validated_data
        refusal = api_key_message_refusal(api_key=request.auth, request=validated["request"])
        if refusal is not None and refusal.forbidden:
            return Response({"detail": refusal.reason}, status=status.HTTP_403_FORBIDDEN)
        if refusal is not None:
            return Response({refusal.field: [refusal.reason]}, status=status.HTTP_400_BAD_REQUEST)

        def create(key: str | None) -> tuple[Message, bool]:
            if key is None:
                return message_create(**validated, api_key=request.auth), True
            body = request.data.dict() if hasattr(request.data, "dict") else request.data
            return message_create_idempotent(
                **validated, api_key=request.auth, idempotency_key=key, fingerprint=request_fingerprint(body)
            )

        return idempotent_response(
            request,
            create=create,
            respond=lambda message, replayed: Response(message_data(message), status=status.HTTP_201_CREATED),
        )

    @extend_schema(request=None, responses={200: dict})
    @action(detail=False, methods=["get"])
    def summary(self, request):
        """Counts by status, opens, clicks and reads, and delivery / open / click rates, for the messages the
        list's filters select (a campaign, a channel, a time range)."""
        return Response(message_outcome_summary(self.filter_queryset(self.get_queryset())))

    @extend_schema(request=None, responses={200: MessageSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        message = self.get_object()
        if not message_cancel(message=message, by=f"API key {request.auth.name}"):
            message.refresh_from_db()
            detail = (
                f"Message {message.pk} is {message.status}; "
                "only scheduled or queued messages, or waiting ones, can be cancelled."
            )
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        audit_record(action=AuditEntry.Action.MESSAGE_CANCELLED, target=message, request=request)
        message.refresh_from_db()
        return Response(message_data(message))

    @extend_schema(request=None, responses={200: MessageSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Queue a message the cost guard held (status `held`) again; the spend caps no longer hold it."""
        message = self.get_object()
        if not held_messages_release(message_ids=[message.pk], by=f"API key {request.auth.name}"):
            message.refresh_from_db()
            detail = f"Message {message.pk} is {message.status}; only held messages can be released."
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        audit_record(action=AuditEntry.Action.MESSAGES_RELEASED, target=message, request=request)
        message.refresh_from_db()
        return Response(message_data(message))
