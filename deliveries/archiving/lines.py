"""One row as one JSON line, in the shape of Django's own serialisation (`{"model", "pk", "fields"}`), and back.

Self-describing: the model label and every concrete field by name, foreign keys as the id they hold. Unlike
Django's JSON encoder, datetimes keep their microseconds (it cuts them to milliseconds), so a restored row is the
row archived, to the microsecond.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.dateparse import parse_duration
from django.utils.duration import duration_string

# How every line starts, as row_line and line_sql write it (whitespace aside): its model, its id and, for an event,
# its message first among the fields. Read without parsing the rest.
LINE_HEAD = re.compile(
    r'\{\s*"model"\s*:\s*"(?P<model>[a-z_.]+)"\s*,\s*"pk"\s*:\s*(?P<pk>[0-9]+)\s*,\s*"fields"\s*:\s*\{'
    r'(?:\s*"message"\s*:\s*(?P<message>[0-9]+|null))?'
)


class ArchiveLineError(ValueError):
    """A line that is not an archived row this version can restore."""


Converter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _optional(convert: Converter) -> Converter:
    return lambda value: None if value is None else convert(value)


def _duration(text: str) -> timedelta:
    parsed = parse_duration(text)
    if parsed is None:
        raise ValueError(f"not a duration: {text!r}")
    return parsed


@functools.cache
def _codec(model: type[models.Model]) -> tuple[tuple[str, str, Converter, Converter], ...]:
    """(name, attname, to JSON, from JSON) for each concrete field but the primary key."""
    codec = []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        encode: Converter = _identity
        decode: Converter = _identity
        if isinstance(field, models.DateTimeField):
            encode, decode = _optional(datetime.isoformat), _optional(datetime.fromisoformat)
        elif isinstance(field, models.DurationField):
            encode, decode = _optional(duration_string), _optional(_duration)
        elif isinstance(field, models.UUIDField):
            encode, decode = _optional(str), _optional(uuid.UUID)
        codec.append((field.name, field.attname, encode, decode))
    return tuple(codec)


def row_line(model: type[models.Model], row: dict[str, Any]) -> str:
    """The JSON line (with its newline) of a row read with `.values()` of every concrete field (by attname)."""
    fields = {name: encode(row[attname]) for name, attname, encode, _decode in _codec(model)}
    line = {"model": model._meta.label_lower, "pk": row[model._meta.pk.attname], "fields": fields}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


def line_sql(model: type[models.Model], connection: BaseDatabaseWrapper) -> str:
    """PostgreSQL: an SQL expression giving a row's line (without its newline), built by the server, a field at a
    time as row_line builds it. Its datetimes are ISO 8601 as Python writes them (the connection's time zone is
    UTC); its durations PostgreSQL's interval text, which parse_duration reads as well."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [
        f"{table}.{quote(field.column)} AS {quote(field.name)}"
        for field in model._meta.concrete_fields
        if not field.primary_key
    ]
    pk = f"{table}.{quote(model._meta.pk.column)}"
    label = model._meta.label_lower
    # The fields as a row of their own: json_build_object takes 100 arguments at most (50 fields), a row any number,
    # in the same order and with the same JSON for each value.
    fields = f"(SELECT row_to_json(fields) FROM (SELECT {', '.join(columns)}) AS fields)"  # noqa: S608 - quoted names
    return f"json_build_object('model', '{label}', 'pk', {pk}, 'fields', {fields})::text"


def line_row(line: str, *, allowed: tuple[type[models.Model], ...]) -> tuple[type[models.Model], dict[str, Any]]:
    """The model and the row (by attname, the primary key included) a line holds. Raises ArchiveLineError."""
    try:
        data = json.loads(line)
        model = apps.get_model(data["model"])
        if model not in allowed:
            raise ArchiveLineError(f"rows of {data['model']} are not restored by this command")
        fields = data["fields"]
        row = {model._meta.pk.attname: int(data["pk"])}
        for name, attname, _encode, decode in _codec(model):  # type: ignore[arg-type]  # a model class hashes
            row[attname] = decode(fields[name])
    except ArchiveLineError:
        raise
    except (ValueError, KeyError, TypeError, LookupError) as error:
        raise ArchiveLineError(f"not an archived row ({type(error).__name__}: {error})") from error
    return model, row
