from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from content.models import MessageTemplate, MessageTemplateTranslation
from content.services.templates import template_create, template_update
from deliveries.api.strict_serializers import SlugRelatedField, StrictModelSerializer, StrictSerializer

from ..models import Campaign, CampaignStep, Contact, ContactList, Segment
from ..selectors import campaign_progress, campaign_spent, segment_contacts
from ..services.campaign_checks import campaign_problems
from ..services.campaign_cost import CampaignCostEstimate, campaign_cost_estimate
from ..services.campaign_drafts import EDITABLE_FIELDS, campaign_create, campaign_update
from ..services.contact_lists import contact_list_create
from ..services.contacts import contact_create, contact_update
from ..services.segments import segment_create, segment_update


def as_drf_error(error: DjangoValidationError) -> serializers.ValidationError:
    """A Django ValidationError from a service, as DRF's (field -> messages when it has fields)."""
    return serializers.ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages)


# --- Templates ----------------------------------------------------------------------------------------------


class TranslationSerializer(StrictModelSerializer):
    class Meta:
        model = MessageTemplateTranslation
        fields = ["language", "subject", "body", "html_body"]


class TemplateSerializer(StrictModelSerializer):
    translations = TranslationSerializer(many=True, read_only=True)

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "name",
            "slug",
            "channel",
            "language",
            "subject",
            "body",
            "html_body",
            "variables",
            "sample_context",
            "translations",
            "created_at",
            "updated_at",
        ]

    def create(self, validated_data):
        try:
            return template_create(**validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error

    def update(self, instance, validated_data):
        try:
            return template_update(template=instance, **validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error


# --- Contacts and lists -------------------------------------------------------------------------------------


class ContactSerializer(StrictModelSerializer):
    lists = serializers.PrimaryKeyRelatedField(many=True, queryset=ContactList.objects.all(), required=False)

    class Meta:
        model = Contact
        fields = [
            "id",
            "name",
            "phone",
            "email",
            "language",
            "time_zone",
            "attributes",
            "sms_consent",
            "whatsapp_consent",
            "email_consent",
            "lists",
            "created_at",
            "updated_at",
        ]
        # Uniqueness is checked by the contact services on the normalised phone and email.
        validators: list = []
        extra_kwargs: dict[str, dict[str, Any]] = {"phone": {"validators": []}, "email": {"validators": []}}

    def create(self, validated_data):
        try:
            return contact_create(**validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error

    def update(self, instance, validated_data):
        lists = validated_data.pop("lists", None)
        try:
            contact = contact_update(contact=instance, **validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error
        if lists is not None:
            contact.lists.set(lists)
        return contact


class ContactListSerializer(StrictModelSerializer):
    contact_count = serializers.SerializerMethodField(help_text="Contacts in the list.")

    class Meta:
        model = ContactList
        fields = ["id", "name", "description", "contact_count", "created_at"]

    def get_contact_count(self, contact_list) -> int:
        # Annotated by the view's queryset; a list just created has none.
        count = getattr(contact_list, "contact_count", None)
        return contact_list.contacts.count() if count is None else count

    def create(self, validated_data):
        try:
            return contact_list_create(**validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error


class SegmentSerializer(StrictModelSerializer):
    contact_count = serializers.SerializerMethodField(help_text="Contacts the segment selects now.")

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "contact_list", "match", "filters", "contact_count", "updated_at"]

    def get_contact_count(self, segment) -> int:
        return segment_contacts(segment=segment).count()

    def create(self, validated_data):
        try:
            return segment_create(**{"filters": [], **validated_data})
        except DjangoValidationError as error:
            raise as_drf_error(error) from error

    def update(self, instance, validated_data):
        try:
            return segment_update(segment=instance, **validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error


class ContactIdsSerializer(StrictSerializer):
    contacts = serializers.PrimaryKeyRelatedField(many=True, queryset=Contact.objects.all())


# --- Campaigns ----------------------------------------------------------------------------------------------


class CampaignStepSerializer(StrictModelSerializer):
    template: serializers.SlugRelatedField[MessageTemplate] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = CampaignStep
        fields = ["position", "template", "condition", "delay", "window"]
        read_only_fields = fields


class CampaignSerializer(StrictModelSerializer):
    template = SlugRelatedField(
        slug_field="slug", queryset=MessageTemplate.objects.all(), allow_null=True, required=False
    )
    progress = serializers.SerializerMethodField()
    steps = CampaignStepSerializer(
        many=True, read_only=True, help_text="Follow-up steps (read-only here; edit them in the admin)."
    )
    launch_problems = serializers.SerializerMethodField(help_text="What stops a draft from being launched.")
    estimated_cost = serializers.SerializerMethodField(
        help_text="What the campaign's own message to each recipient costs, by destination country: for a draft "
        "if launched now, for a launched campaign as estimated at its launch. Decimals as strings; recipients "
        "without a price are counted in unpriced_recipients. On a single campaign only, not in the list."
    )
    spent = serializers.SerializerMethodField(
        help_text="What its messages sent so far cost (their estimated_cost, summed): total, currency, messages, "
        "unpriced_messages. On a single campaign only, not in the list."
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            *EDITABLE_FIELDS,
            "status",
            "next_run_at",
            "parent",
            "occurrence_at",
            "targeted",
            "excluded",
            "launched_at",
            "starts_at",
            "paused_at",
            "completed_at",
            "cancelled_at",
            "created_at",
            "progress",
            "steps",
            "launch_problems",
            "estimated_cost",
            "spent",
        ]
        read_only_fields = [name for name in fields if name not in ("id", *EDITABLE_FIELDS)]

    # A list of campaigns leaves the cost out (CampaignListSerializer): estimating reads every recipient of a
    # draft, and the spend every sent message.
    with_cost = True

    def _estimate(self, campaign) -> CampaignCostEstimate:
        """The draft's estimate, made once per response (launch_problems checks the cap against it too)."""
        estimates = self.__dict__.setdefault("_estimates", {})
        if campaign.pk not in estimates:
            estimates[campaign.pk] = campaign_cost_estimate(campaign=campaign)
        return estimates[campaign.pk]

    def get_estimated_cost(self, campaign) -> dict | None:
        if campaign.status == Campaign.Status.DRAFT:
            return self._estimate(campaign).as_json()
        return campaign.fanout_state.get("estimated_cost")

    def get_spent(self, campaign) -> dict:
        return campaign_spent(campaign=campaign).as_json()

    def get_progress(self, campaign) -> dict:
        return campaign_progress(campaign=campaign)

    def get_launch_problems(self, campaign) -> dict:
        if campaign.status != Campaign.Status.DRAFT:
            return {}
        if not self.with_cost:
            return campaign_problems(campaign, with_cost=False)
        estimate = self._estimate(campaign) if campaign.spend_cap is not None else None
        return campaign_problems(campaign, estimate=estimate)

    def create(self, validated_data):
        try:
            return campaign_create(created_by=None, **validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error

    def update(self, instance, validated_data):
        try:
            return campaign_update(campaign=instance, **validated_data)
        except DjangoValidationError as error:
            raise as_drf_error(error) from error


class CampaignListSerializer(CampaignSerializer):
    """A campaign in the list: without `estimated_cost` and `spent`, and without the spend cap's check in
    `launch_problems` (each would read every recipient or every sent message of each campaign on the page)."""

    with_cost = False

    class Meta(CampaignSerializer.Meta):
        fields = [name for name in CampaignSerializer.Meta.fields if name not in ("estimated_cost", "spent")]
        read_only_fields = [name for name in fields if name not in ("id", *EDITABLE_FIELDS)]
