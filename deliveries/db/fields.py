"""A model's columns as the statements here use them: the concrete field of a name, and its database type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

if TYPE_CHECKING:
    Field = models.Field[Any, Any]


def concrete_field(model: type[models.Model], name: str) -> Field:
    """The field `name` of `model`, a column (never a reverse relation here)."""
    return cast("Field", model._meta.get_field(name))


def pk_field(model: type[models.Model]) -> Field:
    """The model's primary key field."""
    return model._meta.pk


def column_type(field: Field, connection: BaseDatabaseWrapper) -> str:
    """The field's column type (`bigint`, `varchar(20)`): every field used here has one."""
    return cast(str, field.db_type(connection))
