"""Contacts: checking and normalising their fields (for the admin, imports and code alike), writing them, and
rendering a template for one."""

from __future__ import annotations

import contextlib
import keyword
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from content.locales import normalize_language, normalize_time_zone
from content.models import MessageTemplate
from content.services.templates import CONTACT_VARIABLES, RenderedContent, template_render
from deliveries.addresses import normalize_email, normalize_phone

from ..models import Contact, ContactList
from ..selectors import contact_context

CONSENT_FIELDS = ("sms_consent", "whatsapp_consent", "email_consent")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = {"yes", "y", "true", "t", "1", "on", "x"}
_FALSE = {"no", "n", "false", "f", "0", "off"}


def attribute_name_problem(name: str) -> str | None:
    """Why `name` cannot be a custom attribute (it must be usable as a template variable), or None."""
    if not _ATTRIBUTE_NAME.match(name) or keyword.iskeyword(name):
        return f"'{name}' cannot be an attribute name: use letters, digits and _, not starting with a digit."
    if name in CONTACT_VARIABLES or name in ("attributes", "lists", "list", *CONSENT_FIELDS):
        return f"'{name}' is a contact field, not a custom attribute."
    return None


def contact_phone_normalize(value: str) -> str:
    """The number in E.164, as deliveries.addresses.normalize_phone gives it, also taking the international
    prefix 00 for + (0044 20 7946 0958 -> +442079460958), as address books across Europe and much of the world
    write it. Tried only when the number does not parse as written, so where PHONE_DEFAULT_REGION dials abroad
    otherwise (0011 from Australia) the region's reading stands. Raises the original ValidationError."""
    try:
        return normalize_phone(value)
    except ValidationError:
        text = str(value or "").strip()
        if text.startswith("00"):
            with contextlib.suppress(ValidationError):
                return normalize_phone("+" + text[2:])
        raise


def parse_consent(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationError(f"'{value}' is not a yes/no answer (use yes or no, true or false, 1 or 0).")


def contact_fields_clean(data: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise the contact fields present in `data` (phone to E.164, 00 read as +, email to lower
    case, language code, IANA time zone, consents to booleans, attribute names). Returns the cleaned fields; raises
    ValidationError({field: [...]}) listing every problem."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    normalizers = {
        "phone": contact_phone_normalize,
        "email": lambda value: normalize_email(value).lower(),
        "language": normalize_language,
        "time_zone": normalize_time_zone,
        **{name: parse_consent for name in CONSENT_FIELDS},
    }
    for name, value in data.items():
        try:
            if name == "name":
                cleaned[name] = " ".join(str(value or "").split())
                if len(cleaned[name]) > 200:
                    raise ValidationError("Keep the name under 200 characters.")
            elif name == "attributes":
                cleaned[name] = _attributes_clean(value)
            elif name in normalizers:
                blank = value is None or (isinstance(value, str) and not value.strip())
                cleaned[name] = ("" if name not in CONSENT_FIELDS else False) if blank else normalizers[name](value)
            else:
                raise ValidationError(f"'{name}' is not a contact field.")
        except ValidationError as error:
            errors[name] = error.messages
    if errors:
        raise ValidationError(errors)
    return cleaned


def _attributes_clean(value: Any) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError('Give the attributes as a JSON object: {"plan": "gold"}.')
    problems = [problem for name in value if (problem := attribute_name_problem(name))]
    if problems:
        raise ValidationError(problems)
    return dict(value)


@transaction.atomic
def contact_create(*, lists: list[ContactList] | None = None, **fields: Any) -> Contact:
    """Create a contact from its fields (see contact_fields_clean). Raises ValidationError."""
    contact = Contact(**contact_fields_clean(fields))
    contact.full_clean()
    contact.save()
    if lists:
        contact.lists.add(*lists)
    return contact


@transaction.atomic
def contact_update(*, contact: Contact, **fields: Any) -> Contact:
    """Change the given fields of a contact. Raises ValidationError."""
    for name, value in contact_fields_clean(fields).items():
        setattr(contact, name, value)
    contact.full_clean()
    contact.save()
    return contact


def template_render_for_contact(
    *, template: MessageTemplate, contact: Contact, context: dict[str, Any] | None = None
) -> RenderedContent:
    """Render for one contact: in the contact's language, with its fields and attributes as variables (and
    `context` on top, for values that are not the contact's). Raises TemplateRenderError, whose reason is what
    a message for this contact should fail with."""
    values = {**contact_context(contact=contact), **(context or {})}
    return template_render(template=template, context=values, language=contact.language)
