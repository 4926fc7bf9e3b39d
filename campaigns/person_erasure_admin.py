"""The contacts admin's "Erase these people's data (GDPR)" action: a confirmation page that counts what each
person's erasure changes (a dry run), then the erasure, through the same service as `manage.py erase_person`.

Superusers only, like lifting a suppression: an erasure cannot be undone. What the page and the notice after it say
never includes an address, since Django's messages may travel in a cookie.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from deliveries.models import AuditEntry
from deliveries.services.audit import audit_record

from .models import Contact
from .services.person_erasure import PersonErasure, PersonErasureInputError, person_erase


def erasure_allowed(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_superuser


def _erase(contact: Contact, *, dry_run: bool) -> PersonErasure:
    """By phone when the contact has one (the person's other address is found through the contact either way);
    by email when the stored phone is unusable (a contact saved before phones were checked). Raises
    PersonErasureInputError when neither address is usable."""
    try:
        return person_erase(
            phone=contact.phone or None, email=None if contact.phone else contact.email, dry_run=dry_run
        )
    except PersonErasureInputError:
        if not (contact.phone and contact.email):
            raise
    return person_erase(email=contact.email, dry_run=dry_run)


def _erasure_or_error(contact: Contact) -> tuple[PersonErasure | None, str]:
    try:
        return _erase(contact, dry_run=True), ""
    except PersonErasureInputError as error:
        return None, str(error)


def erase_contacts(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Contact]):
    """The action: the confirmation page on the first POST, the erasure on the second (it carries `confirmed`)."""
    contacts = list(queryset.order_by("pk"))
    if request.POST.get("confirmed") != "yes":
        # Each person counted on their own: one contact whose addresses are unusable does not hide the others.
        people = [(contact, *_erasure_or_error(contact)) for contact in contacts]
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Erase these people's data?",
            "opts": modeladmin.model._meta,
            "people": people,
            "erasable": sum(1 for _, erasure, _ in people if erasure is not None),
            "selected": [contact.pk for contact in contacts],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/campaigns/contact/erase_confirmation.html", context)
    erased, messages_anonymised = 0, 0
    for contact in contacts:
        try:
            erasure = _erase(contact, dry_run=False)
        except PersonErasureInputError:  # a contact saved before its addresses were checked
            # Not the error's text: it quotes the address, and Django's messages may travel in a cookie.
            modeladmin.message_user(
                request,
                f"Contact #{contact.pk} not erased: neither its phone nor its email is a usable address. "
                "Correct the contact, then erase it again.",
                messages.ERROR,
            )
            continue
        audit_record(action=AuditEntry.Action.PERSON_ERASED, request=request, details=erasure.audit_details())
        erased += 1
        messages_anonymised += erasure.counts.messages
    if erased:
        modeladmin.message_user(
            request,
            f"Erased the data of {erased} people: their contacts deleted, {messages_anonymised} messages anonymised, "
            "opt-outs kept as hashes. The dispatchers rewrite the archive files without them in the background "
            "(docs/security.md).",
            messages.SUCCESS,
        )
    return None
