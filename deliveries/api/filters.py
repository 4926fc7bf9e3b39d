"""Query-string filters of the API. Filters on a related object take its id, bounded to what an id column holds:
a number past 64 bits overflowed the query (a 500) where it should be "not one of the choices" (400)."""

import django_filters
from django.core.exceptions import ValidationError
from django.db import models
from django_filters.fields import ModelChoiceField, ModelMultipleChoiceField
from django_filters.rest_framework import DjangoFilterBackend, FilterSet
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS

from ..input_limits import MAX_ID
from ..models import Message


def _is_out_of_range(value) -> bool:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return False  # not a number: the field's own check refuses it
    return not -MAX_ID <= number <= MAX_ID


class IdChoiceField(ModelChoiceField):
    def to_python(self, value):
        if value not in self.empty_values and _is_out_of_range(value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class IdMultipleChoiceField(ModelMultipleChoiceField):
    def clean(self, value):
        for item in value or ():
            if _is_out_of_range(item):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": item}
                )
        return super().clean(value)


class IdChoiceFilter(django_filters.ModelChoiceFilter):
    field_class = IdChoiceField


class IdMultipleChoiceFilter(django_filters.ModelMultipleChoiceFilter):
    field_class = IdMultipleChoiceField


class BoundedFilterSet(FilterSet):
    """django-filter's FilterSet for DRF, with related-object filters bounded as above."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.ForeignKey: {**FILTER_FOR_DBFIELD_DEFAULTS[models.ForeignKey], "filter_class": IdChoiceFilter},
        models.OneToOneField: {**FILTER_FOR_DBFIELD_DEFAULTS[models.OneToOneField], "filter_class": IdChoiceFilter},
        models.ManyToManyField: {
            **FILTER_FOR_DBFIELD_DEFAULTS[models.ManyToManyField],
            "filter_class": IdMultipleChoiceFilter,
        },
    }


class BoundedFilterBackend(DjangoFilterBackend):
    """DRF's filter backend building views' `filterset_fields` on BoundedFilterSet."""

    filterset_base = BoundedFilterSet


class MessageFilter(BoundedFilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Message
        fields = ["status", "channel", "priority", "category", "campaign"]
