"""Helpers for campaign tests: many contacts quickly, and a draft campaign to them."""

from campaigns.models import Campaign, Contact
from tests.factories import TemplateFactory


def make_contacts(contact_list, count, **fields):
    """Contacts in bulk (one INSERT per 1,000), all in `contact_list`."""
    start = Contact.objects.count()
    fields = {"sms_consent": True, **fields}
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                name=f"Person {start + i}",
                phone=f"+1415{7000000 + start + i}",
                **fields,
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    Contact.lists.through.objects.bulk_create(
        [Contact.lists.through(contact_id=c.pk, contactlist_id=contact_list.pk) for c in contacts], batch_size=1000
    )
    return contacts


def new_campaign(contact_list, **fields):
    fields.setdefault("template", TemplateFactory(body="Hi {{ first_name }}", variables={"first_name": None}))
    return Campaign.objects.create(name="Spring sale", contact_list=contact_list, **fields)
