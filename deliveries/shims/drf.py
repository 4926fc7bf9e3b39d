"""djangorestframework 3.18: two of DRF's per-request costs, for serializers used thousands of times a second.
Switch: `drf` (off, every request goes through the serializer as DRF documents).

- `PlainStringFields`: validating a dict of plain strings against a serializer's CharField and ChoiceField rules
  without DRF's field machinery (run_validation, validators, get_default's root-serializer lookup), which cost more
  than the rest of creating a message. Anything it is not sure of is left to the serializer, so every error is still
  the serializer's, worded as always.
- `SharedRepresentation`: a ModelSerializer's `.data` for one instance from one serializer whose fields are built
  once per process (DRF builds forty fields afresh per instance: a third of a POST /api/v1/messages/), as a
  ListSerializer reuses its child for every item.

They read DRF's field attributes (`choice_strings_to_values`, `trim_whitespace`, `allow_blank`, `max_length`,
`default`, `requires_context`) and build a `ReturnDict` as `.data` does.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils.serializer_helpers import ReturnDict

from . import shim_enabled, version_check

version_check("drf", "djangorestframework", ">=3.18,<3.19")

# What DRF's CharField validators refuse: NUL characters and lone surrogates.
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def _field_default(field: serializers.Field) -> tuple[Any, bool]:
    """What Field.get_default gives, as (value or callable, call it?). get_default itself looks up the field's
    root serializer on every call (to see whether it is partial, never so here): a tenth of validating an item."""
    if hasattr(field.default, "requires_context"):
        return field.get_default, True
    return field.default, callable(field.default)


class PlainStringFields:
    """A serializer's rules for its plain string fields, applied directly (see the module docstring)."""

    def __init__(self, serializer_class: type[serializers.Serializer]) -> None:
        declared = serializer_class().fields
        # The string and choice fields: their rules are few enough to apply directly.
        self.plain = {
            name: field
            for name, field in declared.items()
            if type(field) in (serializers.CharField, serializers.ChoiceField)
            and not field.allow_null
            and not getattr(field, "min_length", None)
        }
        # Looked up for every item of a batch: plain tuples, not the serializer's BindingDict (slow to iterate).
        self.required = tuple(name for name, field in declared.items() if field.required)
        self.defaults = tuple(
            (name, *_field_default(field))
            for name, field in declared.items()
            if not field.required and field.default is not empty
        )

    def validated(self, data: Any) -> dict[str, Any] | None:
        """The serializer's field-level validated data for `data`, defaults included, when `data` is a dict of
        plain strings the serializer would take as they are; None when the serializer itself must decide (other
        fields, other types, any value it would refuse, or the shim off). The serializer's `validate()` is not
        run: the caller does its part."""
        if type(data) is not dict or not ENABLED:
            return None
        attrs: dict[str, Any] = {}
        for name, value in data.items():
            field = self.plain.get(name)
            if field is None or type(value) is not str or _REFUSED_CHARACTERS.search(value):
                return None
            if isinstance(field, serializers.ChoiceField):
                if value not in field.choice_strings_to_values:
                    return None
                attrs[name] = field.choice_strings_to_values[value]
                continue
            assert isinstance(field, serializers.CharField)  # the only other kind kept in self.plain
            if field.trim_whitespace:
                value = value.strip()
            if not value and not field.allow_blank:
                return None
            if field.max_length is not None and len(value) > field.max_length:
                return None
            attrs[name] = value
        for name in self.required:
            if name not in attrs:
                return None
        for name, default, call in self.defaults:
            if name not in attrs:
                attrs[name] = default() if call else default
        return attrs


class SharedRepresentation:
    """`serializer_class(instance).data`, from one serializer built on first use. Its fields keep no request state,
    so threads can share them."""

    def __init__(self, serializer_class: type[serializers.BaseSerializer]) -> None:
        self.serializer_class = serializer_class
        self._shared: serializers.BaseSerializer | None = None

    def data(self, instance: Any) -> ReturnDict:
        if not ENABLED:
            return self.serializer_class(instance).data
        if self._shared is None:
            self._shared = self.serializer_class()
        # The ReturnDict points at a serializer of this instance, as .data's does (the browsable API reads it).
        return ReturnDict(self._shared.to_representation(instance), serializer=self.serializer_class(instance))


ENABLED = shim_enabled("drf")
