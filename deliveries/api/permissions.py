"""Which API key scope each endpoint needs (ApiScope).

A view names its scope in `key_scope`, and `key_scopes` maps the actions that need another one (a viewset's
`create`, `cancel`...). A view that names none needs `admin`: a new endpoint is closed until someone decides who
may use it. `key_scope = None` lets any valid key in (the API root, which only lists the endpoints).
"""

from __future__ import annotations

from typing import cast

from rest_framework.permissions import BasePermission

from ..models import ApiKey, ApiScope

_UNDECLARED = object()


def required_scope(view) -> str | None:
    """The scope `view` needs for the request it is answering (None: any valid key)."""
    action = getattr(view, "action", None)
    scopes = getattr(view, "key_scopes", None)
    if scopes and action in scopes:
        return scopes[action]
    scope = getattr(view, "key_scope", _UNDECLARED)
    return ApiScope.ADMIN.value if scope is _UNDECLARED else cast(str | None, scope)


class HasKeyScope(BasePermission):
    """403 `{"detail": "This key lacks the scope messages:send."}` when the key lacks the view's scope.

    Listed after IsAuthenticated, so a request without a valid key still gets 401."""

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        scope = required_scope(view)
        if scope is None or api_key.has_scope(scope):
            return True
        self.message = f"This key lacks the scope {scope}."
        return False


def sees_every_message(api_key: ApiKey) -> bool:
    """Whether the key reads and cancels every message and batch; without `admin` only those it created."""
    return api_key.has_scope(ApiScope.ADMIN)
