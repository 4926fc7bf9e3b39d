"""The campaigns API: templates, contacts, lists and campaigns (with their lifecycle actions), and batches of
messages. Thin: each view parses input and calls one service."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, ProtectedError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from deliveries.api.permissions import sees_every_message
from deliveries.api.serializers import plain_message_validate
from deliveries.models import ApiScope, AuditEntry
from deliveries.services.api_keys import api_key_message_refusal
from deliveries.services.audit import audit_record
from deliveries.services.idempotency import (
    IdempotencyKeyError,
    IdempotencyKeyInvalid,
    idempotent_create,
    request_fingerprint,
)

from ..models import Batch, Campaign, Contact, ContactList, MessageTemplate, Segment
from ..services.batches import MAX_BATCH, ItemInvalid, batch_messages_create, batch_outcome_replay, batch_templates
from ..services.campaign_lifecycle import (
    CampaignStateError,
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)
from ..services.contact_lists import contact_list_add, contact_list_remove
from ..services.templates import template_translation_set
from .serializers import (
    BatchItemSerializer,
    BatchResultSerializer,
    BatchSerializer,
    CampaignSerializer,
    ContactIdsSerializer,
    ContactListSerializer,
    ContactSerializer,
    MessageBatchSerializer,
    SegmentSerializer,
    TemplateSerializer,
    TranslationSerializer,
    as_drf_error,
)


def conflict(detail: str) -> Response:
    return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)


class ProtectedDestroyMixin:
    """Deleting something others still use (a template a campaign sends) answers 409 with the reason."""

    def destroy(self, request, *args, **kwargs):
        try:
            return super().destroy(request, *args, **kwargs)
        except ProtectedError as error:
            users = sorted({str(obj) for obj in error.protected_objects})[:5]
            return conflict(f"In use by {', '.join(users)}; it cannot be deleted.")


class TemplateViewSet(ProtectedDestroyMixin, viewsets.ModelViewSet):
    """Message templates with declared variables; content is checked on every write."""

    key_scope = ApiScope.TEMPLATES_MANAGE
    queryset = MessageTemplate.objects.prefetch_related("translations").order_by("name")
    serializer_class = TemplateSerializer
    filterset_fields = ["channel", "slug"]

    # Template content reaches recipients and the admin: every change is in the audit trail.
    def _audit(self, template, change: str, **details):
        audit_record(
            action=AuditEntry.Action.TEMPLATE_CHANGED,
            target=template,
            request=self.request,
            details={"change": change, **details},
        )

    def perform_create(self, serializer):
        super().perform_create(serializer)
        self._audit(serializer.instance, "created")

    def perform_update(self, serializer):
        super().perform_update(serializer)
        self._audit(serializer.instance, "changed")

    def perform_destroy(self, instance):
        with transaction.atomic():  # a template still in use is not deleted, and then not recorded either
            self._audit(instance, "deleted")
            super().perform_destroy(instance)

    @extend_schema(request=TranslationSerializer, responses={200: TemplateSerializer})
    @action(detail=True, methods=["post"])
    def translations(self, request, pk=None):
        """Create or replace the template's version in a language."""
        template = self.get_object()
        data = TranslationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            template_translation_set(template=template, **data.validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error
        self._audit(template, "translation set", language=data.validated_data.get("language"))
        return Response(TemplateSerializer(self.get_object()).data)


class ContactViewSet(viewsets.ModelViewSet):
    key_scope = ApiScope.CONTACTS_MANAGE
    queryset = Contact.objects.prefetch_related("lists").order_by("pk")
    serializer_class = ContactSerializer
    filterset_fields = ["phone", "email", "lists", "language", "time_zone"]


class ContactListViewSet(ProtectedDestroyMixin, viewsets.ModelViewSet):
    key_scope = ApiScope.CONTACTS_MANAGE
    queryset = ContactList.objects.annotate(contact_count=Count("contacts")).order_by("name")
    serializer_class = ContactListSerializer

    @extend_schema(request=ContactIdsSerializer, responses={200: ContactListSerializer})
    @action(detail=True, methods=["post"], url_path="add")
    def add_contacts(self, request, pk=None):
        """Add contacts (by id) to the list."""
        return self._change_members(request, contact_list_add)

    @extend_schema(request=ContactIdsSerializer, responses={200: ContactListSerializer})
    @action(detail=True, methods=["post"], url_path="remove")
    def remove_contacts(self, request, pk=None):
        """Take contacts (by id) out of the list."""
        return self._change_members(request, contact_list_remove)

    def _change_members(self, request, service):
        contact_list = self.get_object()
        data = ContactIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service(contact_list=contact_list, contacts=data.validated_data["contacts"])
        return Response(self.get_serializer(self.get_object()).data)


class SegmentViewSet(ProtectedDestroyMixin, viewsets.ModelViewSet):
    """Saved attribute filters over contacts; `contact_count` is how many they select now."""

    key_scope = ApiScope.CONTACTS_MANAGE
    queryset = Segment.objects.order_by("name")
    serializer_class = SegmentSerializer


class CampaignViewSet(ProtectedDestroyMixin, viewsets.ModelViewSet):
    """Campaigns: drafts are edited freely; launch, pause, resume and cancel drive the lifecycle."""

    key_scope = ApiScope.CAMPAIGNS_MANAGE
    queryset = (
        Campaign.objects.select_related("template").prefetch_related("steps__template").order_by("-created_at", "-pk")
    )
    serializer_class = CampaignSerializer
    filterset_fields = ["status", "parent"]

    def destroy(self, request, *args, **kwargs):
        campaign = self.get_object()
        if campaign.status != Campaign.Status.DRAFT:
            return conflict("Only a draft can be deleted; cancel the campaign instead.")
        return super().destroy(request, *args, **kwargs)

    def update(self, request, *args, **kwargs):
        try:
            return super().update(request, *args, **kwargs)
        except CampaignStateError as error:
            return conflict(str(error))

    def _act(self, request, service, audit_action: str):
        campaign = self.get_object()
        try:
            service(campaign=campaign, by=f"API key {request.auth.name}")
        except DjangoValidationError as error:
            raise as_drf_error(error) from error
        except CampaignStateError as error:
            return conflict(str(error))
        audit_record(action=audit_action, target=campaign, request=request)
        campaign.refresh_from_db()
        return Response(self.get_serializer(campaign).data)

    @extend_schema(request=None, responses={200: CampaignSerializer, 400: None, 409: None})
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        """Start a draft (400 with what is missing); a recurring one waits for its next occurrence."""
        return self._act(request, campaign_launch, AuditEntry.Action.CAMPAIGN_LAUNCHED)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Hold every message not yet sent; nothing more goes out until resumed."""
        return self._act(request, campaign_pause, AuditEntry.Action.CAMPAIGN_PAUSED)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Send what was held; nobody already sent to is sent to again."""
        return self._act(request, campaign_resume, AuditEntry.Action.CAMPAIGN_RESUMED)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop for good: every message not yet sent is cancelled."""
        return self._act(request, campaign_cancel, AuditEntry.Action.CAMPAIGN_CANCELLED)


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
            OpenApiParameter(
                "Idempotency-Key",
                location=OpenApiParameter.HEADER,
                required=False,
                description="Send the batch again with the same key and get the original answer (with "
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

        def create(idempotency_key=None):
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

        key = request.headers.get("Idempotency-Key")
        replayed = False
        try:
            if key is None:
                outcome = create()
            else:
                outcome, created = idempotent_create(
                    api_key=request.auth,
                    key=key,
                    scope="messages.batch",
                    fingerprint=request_fingerprint(request.data),
                    create=lambda record: create(record),
                    replay=lambda record: batch_outcome_replay(batch=record.batch),
                )
                replayed = not created
        except NothingStored as nothing:
            outcome = nothing.outcome
        except IdempotencyKeyInvalid as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        except IdempotencyKeyError as error:
            return Response({"detail": str(error)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        if outcome.batch is not None and not replayed:
            # One entry per batch, not per message: the batch's messages point at it.
            audit_record(
                action=AuditEntry.Action.BATCH_CREATED,
                target=outcome.batch,
                request=request,
                details={"accepted": outcome.accepted, "rejected": outcome.rejected},
            )
        code = status.HTTP_201_CREATED if outcome.accepted else status.HTTP_400_BAD_REQUEST
        response = Response(outcome.as_response(), status=code)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


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
