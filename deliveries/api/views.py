from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ..models import Message
from ..selectors import message_outcome_summary
from ..services.messages import message_cancel, message_create
from .filters import MessageFilter
from .serializers import MessageCreateSerializer, MessageDetailSerializer, MessageSerializer


class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Send messages and follow them: create, list, fetch with the timeline, cancel."""

    queryset = Message.objects.select_related("template").all()
    filterset_class = MessageFilter

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("events")
        return queryset

    def get_serializer_class(self):
        return MessageDetailSerializer if self.action == "retrieve" else MessageSerializer

    @extend_schema(request=MessageCreateSerializer, responses={201: MessageSerializer})
    def create(self, request):
        serializer = MessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = message_create(**serializer.validated_data, api_key=request.auth)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

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
            detail = f"Message {message.pk} is {message.status}; only scheduled or queued messages can be cancelled."
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        message.refresh_from_db()
        return Response(MessageSerializer(message).data)
