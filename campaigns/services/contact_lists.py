"""Contact lists: creating them and changing who is in them."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from ..models import Contact, ContactList


@transaction.atomic
def contact_list_create(*, name: str, description: str = "") -> ContactList:
    """Raises ValidationError (a list of that name exists)."""
    contact_list = ContactList(name=" ".join(name.split()), description=description)
    contact_list.full_clean()
    contact_list.save()
    return contact_list


def contact_list_add(*, contact_list: ContactList, contacts: Iterable[Contact]) -> None:
    contact_list.contacts.add(*contacts)


def contact_list_remove(*, contact_list: ContactList, contacts: Iterable[Contact]) -> None:
    contact_list.contacts.remove(*contacts)
