"""Erasing a person, as asked by a GDPR erasure request: `manage.py erase_person` and the contacts admin's action.

A person is found by a phone number or an email address. Their contacts (those with that phone or email) are
deleted with their list memberships, and each contact's other address is the person's too: erasing by phone also
erases the messages to the contact's email address. Everything deliveries holds of each address is erased by
deliveries.services.erasure (messages anonymised, replies blanked, suppression entries kept as keyed hashes); the
contacts' names are blanked wherever those rows, audit entries and admin history quote them. Segments whose
filters quote an address have the quote replaced (such a filter selected this person and nobody else).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from deliveries.addresses import normalize_email
from deliveries.services.erasure import ErasureCounts, PersonAddress, recipient_data_erase
from deliveries.services.erasure_text import PersonQuotes
from deliveries.services.suppression import suppression_address
from deliveries.services.suppression_hashes import suppression_hash

from ..models import Contact, Segment
from .contacts import contact_phone_normalize

PHONE_CHANNELS = ("sms", "whatsapp")  # a WhatsApp address is the E.164 number (deliveries.addresses)


class PersonErasureInputError(ValueError):
    """The phone number or email address given cannot be anyone's (the message says why)."""


@dataclass
class PersonErasure:
    """Who was erased (or would be, in a dry run) and what changed."""

    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    counts: ErasureCounts = field(default_factory=ErasureCounts)
    dry_run: bool = False

    @property
    def addresses(self) -> list[PersonAddress]:
        return [PersonAddress(channel, phone) for phone in self.phones for channel in PHONE_CHANNELS] + [
            PersonAddress("email", email) for email in self.emails
        ]

    def audit_details(self) -> dict:
        """What the audit entry keeps: the addresses as their suppression hashes (never in clear) and the counts.
        Whether someone was erased can be checked later by hashing their address with the same key."""
        return {
            "phone_hashes": [suppression_hash(suppression_address("sms", phone)) for phone in self.phones],
            "email_hashes": [suppression_hash(suppression_address("email", email)) for email in self.emails],
            "counts": self.counts.as_dict(),
        }


def person_identify(*, phone: str | None = None, email: str | None = None) -> tuple[list[str], list[str]]:
    """The person's phone numbers and email addresses, normalised as contacts and messages store them: the one
    given, and those of the contacts that have it. Raises PersonErasureInputError for an unusable address."""
    if bool(phone) == bool(email):
        raise PersonErasureInputError("Give either a phone number or an email address (one, not both).")
    try:
        phones = [contact_phone_normalize(phone)] if phone else []
        emails = [normalize_email(email).lower()] if email else []
    except ValidationError as error:
        raise PersonErasureInputError(" ".join(error.messages)) from None
    for contact in _contacts_of(phones, emails):
        if contact.phone and contact.phone not in phones:
            phones.append(contact.phone)
        if contact.email and contact.email not in emails:
            emails.append(contact.email)
    return phones, emails


def _contacts_of(phones: Sequence[str], emails: Sequence[str]) -> list[Contact]:
    if not phones and not emails:
        return []
    return list(Contact.objects.filter(Q(phone__in=phones) | Q(email__in=[e.lower() for e in emails])))


def person_erase(*, phone: str | None = None, email: str | None = None, dry_run: bool = False) -> PersonErasure:
    """Erase everything Tidings holds of the person with this phone number or email address (see the module's
    docstring); with `dry_run`, only count it. Raises PersonErasureInputError for an unusable address."""
    phones, emails = person_identify(phone=phone, email=email)
    erasure = PersonErasure(phones=phones, emails=emails, dry_run=dry_run)
    with transaction.atomic():
        contacts = _contacts_of(phones, emails)
        contact_ids = [contact.pk for contact in contacts]
        names = [contact.name for contact in contacts if len(contact.name) > 1]
        recipient_data_erase(
            addresses=erasure.addresses,
            also_quoted=names,
            also_targets=[("campaigns.contact", contact_ids)],
            counts=erasure.counts,
            dry_run=dry_run,
        )
        erasure.counts.segments = _segments_scrub(PersonQuotes(phones + emails), dry_run=dry_run)
        erasure.counts.list_memberships = Contact.lists.through.objects.filter(contact_id__in=contact_ids).count()
        erasure.counts.contacts = len(contact_ids)
        if not dry_run:
            Contact.objects.filter(pk__in=contact_ids).delete()  # list memberships go with them (cascade)
    return erasure


def _segments_scrub(quotes: PersonQuotes, *, dry_run: bool) -> int:
    changed = []
    for segment in Segment.objects.filter(quotes.mentioned_in("description", json_fields=["filters"])):
        filters, description = quotes.json(segment.filters), quotes.text(segment.description)
        if (filters, description) != (segment.filters, segment.description):
            segment.filters, segment.description = filters, description
            changed.append(segment)
    if not dry_run:
        Segment.objects.bulk_update(changed, ["filters", "description"])
    return len(changed)
