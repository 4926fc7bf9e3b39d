"""The cost guard in the admin: the price list (one row per channel and destination country; `manage.py
import_prices` loads many) and the spend caps, each with what its window has cost so far."""

from django.contrib import admin, messages
from django.utils.html import format_html

from content.models import Channel

from .models import Price, SpendCap
from .services.spend_caps import Cap, cap_spent, channels_caps_cannot_count, money, spend_cap_save


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["channel", "destination", "price", "currency", "updated_at"]
    list_filter = ["channel", "currency"]
    search_fields = ["country"]
    fields = ["channel", "country", "price", "currency"]

    @admin.display(description="country", ordering="country")
    def destination(self, price: Price) -> str:
        return price.country or "any country"


@admin.register(SpendCap)
class SpendCapAdmin(admin.ModelAdmin):
    """Caps on spend. Superusers add and remove them; operators (guard.change_spendcap) change the amount, and
    raising it re-admits the messages it held (guard.services.spend_caps.spend_cap_save)."""

    list_display = ["__str__", "covers", "limit", "when_reached", "spent"]
    list_filter = ["scope", "period"]
    fields = ["scope", "scope_value", "period", "amount", "currency", "on_reach"]

    def get_readonly_fields(self, request, obj=None):
        # An operator raises or lowers an amount; what a cap covers is a superuser's decision.
        if obj is not None and not request.user.is_superuser:
            return ["scope", "scope_value", "period", "currency", "on_reach"]
        return []

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        spend_cap_save(cap=obj)

    def changelist_view(self, request, extra_context=None):
        unpriced = [Channel(channel).label for channel in channels_caps_cannot_count()]
        if unpriced:
            self.message_user(
                request,
                f"No price for {', '.join(unpriced)}: no cap counts {'its' if len(unpriced) == 1 else 'their'} "
                "messages. Add a price under Prices (a row with a blank country prices every destination).",
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description="covers", ordering="scope")
    def covers(self, cap: SpendCap) -> str:
        if cap.scope == SpendCap.Scope.ALL:
            return "every message"
        if cap.scope == SpendCap.Scope.API_KEY:
            return f"API key #{cap.scope_value}"
        return f"{cap.scope_value} messages"

    @admin.display(description="cap", ordering="amount")
    def limit(self, cap: SpendCap) -> str:
        return f"{money(cap.amount)} {cap.currency} a {cap.get_period_display().lower()}"

    @admin.display(description="when reached", ordering="on_reach")
    def when_reached(self, cap: SpendCap) -> str:
        return (
            "defer to the next " + cap.get_period_display().lower()
            if cap.on_reach == SpendCap.OnReach.DEFER
            else "hold"
        )

    @admin.display(description="spent in this window")
    def spent(self, cap: SpendCap) -> str:
        try:
            spent = cap_spent(Cap.of(cap))
        except Exception:  # Redis down: the page still lists the caps
            return "unknown (Redis does not answer)"
        share = min(float(spent / cap.amount), 1.0) if cap.amount else 1.0
        return format_html(
            '<span title="{} of {} {}"><span style="display:inline-block;width:8em;height:.8em;background:#ddd;'
            'vertical-align:middle"><span style="display:block;height:100%;width:{}%;background:{}"></span></span>'
            " {} {} ({}%)</span>",
            money(spent),
            money(cap.amount),
            cap.currency,
            f"{share * 100:.0f}",
            "#b35c00" if share >= 0.9 else "#417690",
            money(spent),
            cap.currency,
            f"{share * 100:.0f}",
        )
