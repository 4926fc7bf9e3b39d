"""The price list in the admin: one row per channel and destination country (`manage.py import_prices` loads many)."""

from django.contrib import admin

from .models import Price


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["channel", "destination", "price", "currency", "updated_at"]
    list_filter = ["channel", "currency"]
    search_fields = ["country"]
    fields = ["channel", "country", "price", "currency"]

    @admin.display(description="country", ordering="country")
    def destination(self, price: Price) -> str:
        return price.country or "any country"
