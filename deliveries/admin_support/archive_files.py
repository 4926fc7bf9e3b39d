"""The archive files' admin page (superusers, read-only): where each file is, what it holds, and whether the
dispatchers have taken the erased people out of it yet (deliveries.services.archive_erasure)."""

from django.contrib import admin
from django.db.models import Subquery
from django.template.defaultfilters import filesizeformat

from ..models import ArchiveErasure, ArchiveFile
from .page_access import ReadOnlyAdminMixin, SuperusersOnlyMixin


@admin.register(ArchiveFile)
class ArchiveFileAdmin(ReadOnlyAdminMixin, SuperusersOnlyMixin, admin.ModelAdmin):
    """The archive files (`archive_messages`, ARCHIVE_AFTER_DAYS), read-only: where each is, what it holds, and
    whether the dispatchers have taken the erased people out of it yet (docs/operations.md)."""

    list_display = ["day", "path", "messages", "events", "size_shown", "erasures_shown", "updated_at"]
    date_hierarchy = "day"
    ordering = ["-day", "path"]
    search_fields = ["path"]
    fields = ["day", "path", "messages", "events", "size_shown", "erasures_shown", "updated_at"]

    def get_queryset(self, request):
        latest = ArchiveErasure.objects.order_by("-pk").values("pk")[:1]
        return super().get_queryset(request).annotate(latest_erasure=Subquery(latest))

    @admin.display(description="Size", ordering="size")
    def size_shown(self, obj):
        return filesizeformat(obj.size)

    @admin.display(description="Erased people taken out")
    def erasures_shown(self, obj):
        if obj.latest_erasure is None or obj.erasures_applied >= obj.latest_erasure:
            return "Yes"
        # A file on no dispatcher's disk (moved away) stays waiting: restore_messages blanks what it brings back.
        return "Waiting for its dispatcher"
