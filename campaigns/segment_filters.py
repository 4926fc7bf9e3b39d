"""The filters a segment is made of: which fields and operators exist, checking them, and turning them into a query.

A filter is {"field": ..., "op": ..., "value": ...}:

- fields: `name`, `phone`, `email`, `language`, `time_zone`, `attributes.<name>` (a custom attribute) with the
  text operators; `sms_consent`, `whatsapp_consent`, `email_consent` with `eq` true/false; `list` with `in` and
  `not_in` (list names).
- text operators, all case-insensitive: `eq`, `ne`, `in`, `not_in` (value: a list), `contains`, `startswith`,
  `set`, `not_set` (no value). `ne` and `not_in` include contacts that do not have the attribute at all.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q

from .models import Contact

TEXT_FIELDS = ("name", "phone", "email", "language", "time_zone")
CONSENT_FIELDS = ("sms_consent", "whatsapp_consent", "email_consent")
TEXT_OPS = ("eq", "ne", "in", "not_in", "contains", "startswith", "set", "not_set")
LIST_OPS = ("in", "not_in")
_ATTRIBUTE = re.compile(r"^attributes\.([A-Za-z_][A-Za-z0-9_]*)$")


def _operators(field: str) -> tuple[str, ...]:
    if field in TEXT_FIELDS or _ATTRIBUTE.match(field):
        return TEXT_OPS
    if field in CONSENT_FIELDS:
        return ("eq",)
    if field == "list":
        return LIST_OPS
    return ()


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(str(value).lower())


def segment_filters_clean(filters: Any) -> list[dict[str, Any]]:
    """The filters checked and normalised, or ValidationError listing every filter at fault by its number."""
    if filters in (None, ""):
        return []
    if not isinstance(filters, list):
        raise ValidationError('Give the filters as a JSON list: [{"field": "language", "op": "eq", "value": "fr"}].')
    cleaned, problems = [], []
    for number, item in enumerate(filters, 1):
        if not isinstance(item, dict):
            problems.append(f"Filter {number}: give it as an object with field, op and value.")
            continue
        field, op, value = item.get("field", ""), item.get("op", "eq"), item.get("value")
        operators = _operators(field)
        if not operators:
            problems.append(
                f"Filter {number}: unknown field '{field}'. Use one of {', '.join(TEXT_FIELDS + CONSENT_FIELDS)}, "
                "list, or attributes.<name>."
            )
            continue
        if op not in operators:
            problems.append(f"Filter {number}: '{field}' takes the operators {', '.join(operators)}, not '{op}'.")
            continue
        if field in CONSENT_FIELDS:
            value = _boolean(value)
            if value is None:
                problems.append(f"Filter {number}: '{field}' is compared with true or false.")
                continue
        elif op in ("in", "not_in"):
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, list) or not value:
                problems.append(f"Filter {number}: '{op}' needs a list of values.")
                continue
            value = [str(part) for part in value]
        elif op in ("set", "not_set"):
            value = None
        elif value is None or isinstance(value, list | dict):
            problems.append(f"Filter {number}: '{op}' needs a value to compare with.")
            continue
        else:
            value = str(value)
        cleaned.append({"field": field, "op": op, "value": value})
    if problems:
        raise ValidationError(problems)
    return cleaned


def filter_q(item: dict[str, Any]) -> Q:
    """The condition one (cleaned) filter puts on contacts."""
    field, op, value = item["field"], item["op"], item["value"]
    if field in CONSENT_FIELDS:
        return Q(**{field: value})
    if field == "list":
        members = Contact.lists.through.objects.filter(contactlist__name__in=value).values("contact_id")
        return Q(pk__in=members) if op == "in" else ~Q(pk__in=members)
    attribute = _ATTRIBUTE.match(field)
    path = f"attributes__{attribute.group(1)}" if attribute else field
    present = Q(attributes__has_key=attribute.group(1)) if attribute else ~Q(**{field: ""})
    if op == "set":
        return present
    if op == "not_set":
        return ~present
    if op in ("eq", "ne"):
        matches = Q(**{f"{path}__iexact": value})
    elif op in ("in", "not_in"):
        matches = Q()
        for part in value:
            matches |= Q(**{f"{path}__iexact": part})
    elif op == "contains":
        return Q(**{f"{path}__icontains": value})
    else:  # startswith
        return Q(**{f"{path}__istartswith": value})
    if op in ("eq", "in"):
        return matches
    # A contact without the attribute is "not equal" too; SQL alone would leave it out (NULL <> x is unknown).
    return ~present | (present & ~matches)


def filters_q(filters: list[dict[str, Any]], *, match: str = "all") -> Q:
    """The condition all (or any) of the filters put together; no filters match every contact."""
    combined = Q()
    for item in filters:
        combined = combined | filter_q(item) if match == "any" else combined & filter_q(item)
    return combined
