"""A model's columns as the statements here use them: its concrete fields by name, and a field's column type."""

from __future__ import annotations

import functools
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper


@functools.cache
def fields_by_name(model: type[models.Model]) -> dict[str, models.Field[Any, Any]]:
    """The model's concrete fields by name and by attname (`depends_on`, `depends_on_id`), as `_meta.get_field`
    finds them; looked up once per model, and typed as the columns they are."""
    by_name = {}
    for field in model._meta.concrete_fields:
        by_name[field.attname] = field
        by_name[field.name] = field
    return by_name


def column_type(field: models.Field[Any, Any], connection: BaseDatabaseWrapper) -> str:
    """The field's column type (`bigint`, `varchar(20)`): every field used here has one."""
    return field.db_type(connection) or ""
