from django.contrib import admin

from .models import Campaign, MessageTemplate


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "channel", "updated_at"]
    list_filter = ["channel"]
    search_fields = ["name", "slug", "subject", "body"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "created_at"]
    search_fields = ["name"]
