from django import template

from ..selectors import delivery_overview

register = template.Library()


@register.simple_tag(takes_context=True)
def deliveries_overview(context, hours=24):
    """The overview for the admin index, only for people allowed to see messages."""
    request = context.get("request")
    if request is None or not request.user.has_perm("deliveries.view_message"):
        return None
    return delivery_overview(hours=hours)
