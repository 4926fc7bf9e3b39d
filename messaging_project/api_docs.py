"""Who may read the API's schema and its Swagger UI: a client with an API key, or staff signed in to the admin
(the docs page is opened in a browser, which has the session and not the key), or anyone when API_DOCS_PUBLIC.

The schema lists every operation and field we accept: a map for whoever probes the API, so not public by default.
"""

from django.conf import settings
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission

from deliveries.api.authentication import ApiKeyAuthentication
from deliveries.models import ApiKey


class ApiDocsAccess(BasePermission):
    def has_permission(self, request, view) -> bool:
        if settings.API_DOCS_PUBLIC:
            return True
        if isinstance(request.auth, ApiKey):
            return True
        user = request.user
        return bool(user and getattr(user, "is_active", False) and getattr(user, "is_staff", False))


# The API key first: without credentials DRF then answers 401 with `WWW-Authenticate: Bearer`.
API_DOCS_AUTHENTICATION = [ApiKeyAuthentication, SessionAuthentication]
API_DOCS_PERMISSIONS = [ApiDocsAccess]
