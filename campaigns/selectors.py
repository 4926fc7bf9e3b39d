"""Reads: the contacts of a segment, and what a contact brings to a template's context."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import Contact, Segment
from .segment_filters import filters_q

# Contact fields a template can read by these names; custom attributes may not reuse them.
CONTACT_VARIABLES = ("name", "first_name", "phone", "email", "language", "time_zone")


def segment_contacts(*, segment: Segment) -> QuerySet[Contact]:
    """The contacts the segment selects now: of its list (if any) and passing its filters."""
    contacts = segment.contact_list.contacts.all() if segment.contact_list_id else Contact.objects.all()
    return contacts.filter(filters_q(segment.filters, match=segment.match))


def contact_context(*, contact: Contact) -> dict[str, Any]:
    """The template variables the contact fills: its custom attributes and its fields by name.

    Blank fields are left out, so a template's default (or a refusal naming the variable) applies instead of
    an empty value.
    """
    fields = {
        "name": contact.name,
        "first_name": contact.name.split()[0] if contact.name.strip() else "",
        "phone": contact.phone,
        "email": contact.email,
        "language": contact.language,
        "time_zone": contact.time_zone,
    }
    context = {key: value for key, value in contact.attributes.items() if value not in (None, "")}
    context.update({key: value for key, value in fields.items() if value})
    return context
