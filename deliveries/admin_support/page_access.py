"""Who may use an admin page: superusers alone (keys, the audit trail, the archive files), and pages that show
and never write, rows only the services write (the audit trail, the archive files, the console's alerts)."""

from typing import Any


class ReadOnlyAdminMixin:
    """No add, change or delete for anyone, superusers included; every field shown read-only. Put it first among
    the bases, so that it wins over a mixin granting superusers those rights."""

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        return getattr(self, "fields", None) or ()

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class SuperusersOnlyMixin:
    """Pages for superusers alone, whatever permissions a staff member was given."""

    def has_module_permission(self, request: Any) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser
