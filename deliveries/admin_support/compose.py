"""The admin's compose page for one message (MessageAdmin.compose_view delegates here)."""

from django.contrib import messages
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from content.models import Channel
from content.services.sms_segments import sms_segments

from ..forms import ComposeForm
from ..models import AuditEntry, Status
from ..services.audit import audit_record
from ..services.messages import MessageValidationError, message_create, message_request_validate
from ..services.suppression import suppression_blocks, suppression_for


def compose_view(model_admin, request):
    """The compose page: validate, preview (with the suppression warning), create and audit one message."""
    form = ComposeForm(request.POST or None)
    message_request = preview = suppression = None
    if request.method == "POST" and form.is_valid():
        try:
            message_request, content = message_request_validate(**form.cleaned_data)
        except MessageValidationError as error:
            for field, errors in error.errors.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            # A warning, not a refusal: the worker decides at send time, and the entry may be lifted by then.
            suppression = suppression_notice(request, message_request)
            if "_preview" in request.POST:
                preview = content
            else:
                message = message_create(request=message_request, content=content, created_by=request.user)
                audit_record(action=AuditEntry.Action.MESSAGE_CREATED, target=message, request=request)
                if message.status == Status.HELD:
                    # Stored, but held by the cost guard's velocity limits: said as plainly as a refusal would be.
                    text = f"Message #{message.pk} to {message.recipient} held. {message.last_error_message}"
                    model_admin.message_user(request, text, messages.WARNING)
                else:
                    verb = "scheduled" if message.status == Status.SCHEDULED else "queued"
                    why = f" {message_request.deferral.describe()}" if message_request.deferral else ""
                    model_admin.message_user(
                        request, f"Message #{message.pk} to {message.recipient} {verb}.{why}", messages.SUCCESS
                    )
                if suppression:
                    warning = render_to_string("admin/deliveries/message/suppression_warning.html", suppression)
                    model_admin.message_user(request, warning, messages.WARNING)
                return redirect(reverse("admin:deliveries_message_change", args=[message.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Compose a message",
        "form": form,
        "preview": preview,
        "message_request": message_request,
        "channel_label": Channel(message_request.channel).label if message_request else "",
        "suppression": suppression,
        "sms": sms_segments(preview.body) if preview and message_request.channel == "sms" else None,
        "now": timezone.now(),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/deliveries/message/compose.html", context)


def suppression_notice(request, message_request) -> dict | None:
    """What the compose page says when the recipient is on the suppression list, or None when it is not."""
    entry = suppression_for(channel=message_request.channel, address=message_request.recipient)
    if entry is None:
        return None
    return {
        "entry": entry,
        "blocks": suppression_blocks(entry, category=message_request.category),
        "link": request.user.has_perm("deliveries.view_suppression"),
    }
