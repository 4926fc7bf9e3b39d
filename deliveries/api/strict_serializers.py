"""Serializer bases for every API input: fields the serializer does not declare are refused by name, and what a
model serializer stores is bounded (text lengths, JSON sizes) so that no input reaches the database unchecked.

A mistyped field (`sendat`) used to be dropped in silence, and the message went out at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from ..input_limits import MAX_TEXT_CHARACTERS, JsonWithinLimits

UNKNOWN_FIELD = "Unknown field."
# Sent by the browsable API's HTML forms, never a field of ours.
_FORM_FIELDS = frozenset({"csrfmiddlewaretoken"})


class RejectUnknownFieldsMixin:
    """Refuses fields the serializer does not declare: `{"sendat": ["Unknown field."]}`, with the other errors.

    Read-only fields (an `id` sent back with a PUT) are declared, so they are not unknown: DRF ignores them.
    """

    def to_internal_value(self, data):
        unknown = []
        if isinstance(data, Mapping):
            fields = self.fields
            unknown = sorted(name for name in data if name not in fields and name not in _FORM_FIELDS)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if unknown and isinstance(error.detail, dict):
                error.detail.update(_unknown_errors(unknown))
            raise
        if unknown:
            raise serializers.ValidationError(_unknown_errors(unknown))
        return value


def _unknown_errors(names: list[str]) -> dict[str, list[ErrorDetail]]:
    return {str(name): [ErrorDetail(UNKNOWN_FIELD, code="unknown")] for name in names}


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?$",
        "example": "08:00",
        "description": "A local time of day, without a time zone.",
    }
)
class LocalTimeField(serializers.TimeField):
    """A time of day in someone's local time (quiet hours, a campaign's local send time). OpenAPI's `format: time`
    would promise an RFC 3339 time with an offset, which these never carry."""


class StrictBooleanField(serializers.BooleanField):
    """true or false (JSON), or "true" / "false" (a form post): DRF's own also takes "yes", "on", 1, "n"... and
    a switch that changes when a message goes should not be guessed from a typo."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if data in ("true", "false"):
            return data == "true"
        self.fail("invalid")


class SlugRelatedField(serializers.SlugRelatedField):
    """DRF's, refusing a slug with a NUL character before the lookup: PostgreSQL refuses NUL in a text comparison
    (a 500 where the answer is 400). DRF's CharField has that check; its related fields do not."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A plain serializer that refuses unknown fields."""


class StrictModelSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """A model serializer that refuses unknown fields and bounds what models leave unbounded: text columns
    (MAX_TEXT_CHARACTERS) and JSON columns (MAX_JSON_BYTES, no NUL, NaN or surrogates)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.TimeField: LocalTimeField,
    }

    def build_standard_field(self, field_name, model_field):
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if isinstance(model_field, models.TextField) and "choices" not in field_kwargs:
            field_kwargs.setdefault("max_length", MAX_TEXT_CHARACTERS)
        if isinstance(model_field, models.JSONField):
            field_kwargs["validators"] = [*field_kwargs.get("validators", []), JsonWithinLimits()]
        return field_class, field_kwargs
