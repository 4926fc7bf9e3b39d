"""The campaigns API: templates, contacts, lists and campaigns (with their lifecycle actions). Thin: each view
parses input and calls one service."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, ProtectedError
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from content.models import MessageTemplate
from content.services.templates import template_translation_set
from deliveries.models import ApiScope, AuditEntry
from deliveries.services.api_keys import api_key_campaign_refusal
from deliveries.services.audit import audit_record

from ..models import Campaign, Contact, ContactList, Segment
from ..services.campaign_lifecycle import (
    CampaignStateError,
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)
from ..services.contact_lists import contact_list_add, contact_list_remove
from .serializers import (
    CampaignListSerializer,
    CampaignSerializer,
    ContactIdsSerializer,
    ContactListSerializer,
    ContactSerializer,
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

    def get_serializer_class(self):
        # The list leaves out what is costly per campaign (its estimate, its spend).
        return CampaignListSerializer if self.action == "list" else CampaignSerializer

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

    @extend_schema(request=None, responses={200: CampaignSerializer, 400: None, 403: None, 409: None})
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        """Start a draft (400 with what is missing); a recurring one waits for its next occurrence. 403 for a key
        with its own destination countries or spend cap (a campaign's messages would escape them)."""
        if refusal := api_key_campaign_refusal(request.auth):
            raise PermissionDenied(refusal)
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
